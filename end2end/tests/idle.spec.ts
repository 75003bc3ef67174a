import { test, expect, type Page } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { join, uniqueRoom, closeAllContexts } from './helpers';
import { OwnServer } from './server';

test.afterEach(async ({ browser }) => closeAllContexts(browser));

// Heartbeats every 2 s, a 2 s pong timeout: the browser's silence limit is (2 + 2 + 5) s = 9 s.
const FAST_HEARTBEAT = ['--ping-interval-secs', '2', '--pong-timeout-secs', '2'];
const SILENCE_MS = 9_000;

/** Counts the WebSockets `page` opens from now on. */
function countSockets(page: Page): () => number {
  let opened = 0;
  page.on('websocket', () => {
    opened += 1;
  });
  return () => opened;
}

/** Holds `page` idle for more than twice the silence limit; it must keep its one socket. */
async function staysConnected(page: Page, opened: () => number): Promise<void> {
  const until = Date.now() + 2 * SILENCE_MS + 2_000;
  while (Date.now() < until) {
    await expect(page.getByTestId('connection-status')).toHaveAttribute('data-state', 'online');
    expect(opened(), 'no reconnect while idle').toBe(0);
    await page.waitForTimeout(500);
  }
}

test('a member idle in a quiet room keeps one connection past every timer', async ({ browser }) => {
  test.setTimeout(60_000);
  const server = new OwnServer(3144, FAST_HEARTBEAT);
  await server.start();
  try {
    const ctx = await browser.newContext({ baseURL: server.url });
    const page = await ctx.newPage();
    await join(page, uniqueRoom('idle'), 'Idler', 'owl');
    await staysConnected(page, countSockets(page));
  } finally {
    await server.stop();
  }
});

/** A free TCP port on 127.0.0.1. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** A redis-server of the test's own, without persistence. */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const up = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1', () => {
        c.end();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (up) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error('redis-server did not start');
}

test('in cluster mode, members idle on two nodes keep one connection each', async ({ browser }) => {
  test.setTimeout(90_000);
  const redisPort = await freePort();
  const redis = await startRedis(redisPort);
  const url = `redis://127.0.0.1:${redisPort}/`;
  const a = new OwnServer(3145, [...FAST_HEARTBEAT, '--redis-url', url]);
  const b = new OwnServer(3146, [...FAST_HEARTBEAT, '--redis-url', url]);
  try {
    await a.start();
    await b.start();
    const room = uniqueRoom('idlec');
    const pageA = await (await browser.newContext({ baseURL: a.url })).newPage();
    const pageB = await (await browser.newContext({ baseURL: b.url })).newPage();
    await join(pageA, room, 'Ann', 'fox');
    await join(pageB, room, 'Ben', 'owl');
    // Each sees the other, across the nodes, before the quiet starts.
    await expect(pageA.getByTestId('member-list').getByTestId('member')).toHaveCount(2);
    await expect(pageB.getByTestId('member-list').getByTestId('member')).toHaveCount(2);
    const openedA = countSockets(pageA);
    const openedB = countSockets(pageB);
    await staysConnected(pageA, openedA);
    expect(openedB(), 'no reconnect on the other node').toBe(0);
    await expect(pageB.getByTestId('connection-status')).toHaveAttribute('data-state', 'online');
  } finally {
    await a.stop();
    await b.stop();
    redis.kill();
  }
});
