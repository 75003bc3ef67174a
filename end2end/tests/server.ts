import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** The per-address limits, lifted for tests that are not about them. */
export const LIFTED: Record<string, string> = {
  '--joins-per-minute': '100000',
  '--join-burst': '100000',
  '--max-reservations-per-ip': '100000',
  '--new-rooms-per-hour': '100000',
};

/**
 * A chatroom server process of a test's own, on its own port and database, that the test may stop and start:
 * a copy of the release binary alone in a temporary folder, run there without LEPTOS_* variables.
 */
export class OwnServer {
  readonly port: number;
  readonly dir: string;
  readonly db: string;
  readonly flags: string[];
  private child: ChildProcess | null = null;

  constructor(port: number, flags: string[] = []) {
    this.port = port;
    this.dir = mkdtempSync(path.join(tmpdir(), 'chatroom-e2e-'));
    this.db = path.join(this.dir, 'chat.db');
    this.flags = flags;
    copyFileSync(path.resolve(__dirname, '..', '..', 'target', 'release', 'chatroom'), path.join(this.dir, 'chatroom'));
    // The copy is as big as the binary: remove the folder when the test worker exits.
    process.once('exit', () => rmSync(this.dir, { recursive: true, force: true }));
  }

  /** Served over TLS (the flags name a certificate). */
  get https(): boolean {
    return this.flags.includes('--tls-cert');
  }

  get url(): string {
    return `${this.https ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  /** Does `/healthz` answer 200? (Over TLS, whatever the certificate: tests make their own.) */
  private healthy(): Promise<boolean> {
    const client = this.https ? https : http;
    return new Promise((resolve) => {
      const req = client.get(`${this.url}/healthz`, { rejectUnauthorized: false }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.once('error', () => resolve(false));
    });
  }

  /** Every test browser comes from 127.0.0.1: the per-address limits are lifted unless the test sets them. */
  private defaults(): string[] {
    return Object.entries(LIFTED).flatMap(([flag, value]) => (this.flags.includes(flag) ? [] : [flag, value]));
  }

  async start(): Promise<void> {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LEPTOS_')));
    this.child = spawn(
      path.join(this.dir, 'chatroom'),
      ['--listen', `127.0.0.1:${this.port}`, '--data-path', this.db, '--presence-grace-ms', '1000', ...this.defaults(), ...this.flags],
      { cwd: this.dir, env, stdio: 'ignore' },
    );
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (await this.healthy()) return;
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
