import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A chatroom server process of a test's own, on its own port and database, that the test may stop and start. */
export class OwnServer {
  readonly port: number;
  readonly db: string;
  readonly flags: string[];
  private child: ChildProcess | null = null;

  constructor(port: number, flags: string[] = []) {
    this.port = port;
    this.db = path.join(mkdtempSync(path.join(tmpdir(), 'chatroom-e2e-')), 'chat.db');
    this.flags = flags;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const root = path.resolve(__dirname, '..', '..');
    this.child = spawn(
      path.join(root, 'target', 'release', 'chatroom'),
      ['--listen', `127.0.0.1:${this.port}`, '--data-path', this.db, '--presence-grace-ms', '1000', ...this.flags],
      { env: { ...process.env, LEPTOS_SITE_ROOT: path.join(root, 'target', 'site') }, stdio: 'ignore' },
    );
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      try {
        const r = await fetch(`${this.url}/healthz`);
        if (r.ok) return;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`server on ${this.port} did not start`);
  }

  /** Freezes (SIGSTOP) or thaws (SIGCONT) the process: its sockets stay open but nothing is sent. */
  signal(sig: 'SIGSTOP' | 'SIGCONT'): void {
    this.child?.kill(sig);
  }

  /** SIGTERM, and wait for the process to exit. */
  async stop(): Promise<number | null> {
    const child = this.child;
    if (!child || child.exitCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    const code = await exited;
    this.child = null;
    return code;
  }
}
