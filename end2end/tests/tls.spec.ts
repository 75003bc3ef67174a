import { test, expect } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { closeAllContexts, join, messageWithText, sendMessage, uniqueRoom } from './helpers';
import { OwnServer } from './server';

test.afterEach(async ({ browser }) => closeAllContexts(browser));

/** A self-signed certificate for 127.0.0.1 and localhost, made for this test: [cert, key] paths. */
function selfSigned(): [string, string] {
  const dir = mkdtempSync(path.join(tmpdir(), 'chatroom-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { stdio: 'ignore' });
  return [cert, key];
}

test('over https and wss with a self-signed certificate, the page hydrates and chats under its CSP', async ({ browser }) => {
  const [cert, key] = selfSigned();
  const server = new OwnServer(3148, ['--tls-cert', cert, '--tls-key', key]);
  await server.start();
  try {
    const room = uniqueRoom('tls');
    const violations: string[] = [];
    const sockets: string[] = [];
    const pages = [];
    for (const [name, avatar] of [['Ann', 'fox'], ['Ben', 'owl']]) {
      const ctx = await browser.newContext({ baseURL: server.url, ignoreHTTPSErrors: true });
      const page = await ctx.newPage();
      page.on('console', (m) => {
        if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
      });
      page.on('websocket', (ws) => sockets.push(ws.url()));
      pages.push(page);
      if (name === 'Ann') {
        const response = await page.goto(`/r/${room}`);
        const csp = response!.headers()['content-security-policy'] ?? '';
        expect(csp).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9_-]+' 'wasm-unsafe-eval'/);
        expect(csp).toContain('wss://127.0.0.1:3148');
      }
      await join(page, room, name, avatar);
    }
    const [ann, ben] = pages;
    await sendMessage(ann, 'sealed in TLS');
    await expect(messageWithText(ben, 'sealed in TLS')).toHaveCount(1);
    await sendMessage(ben, 'and back');
    await expect(messageWithText(ann, 'and back')).toHaveCount(1);
    expect(sockets.length).toBeGreaterThan(0);
    for (const url of sockets) expect(url).toMatch(/^wss:\/\/127\.0\.0\.1:3148\//);
    expect(violations).toEqual([]);
  } finally {
    await server.stop();
  }
});
