import { test, expect } from '@playwright/test';
import { avatarRadio, closeAllContexts, join, messageWithText, openRoom, sendMessage, twoUsers, uniqueRoom } from './helpers';
import { OwnServer } from './server';

test.afterEach(async ({ browser }) => closeAllContexts(browser));

test('the page carries a strict CSP and still hydrates and chats under it', async ({ browser }) => {
  const room = uniqueRoom('csp');
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const violations: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy|Content-Security-Policy/i.test(m.text())) violations.push(m.text());
  });
  const response = await page.goto(`/r/${room}`);
  const headers = response!.headers();
  const csp = headers['content-security-policy'] ?? '';
  expect(csp).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9_-]+' 'wasm-unsafe-eval'/);
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).not.toContain('unsafe-inline');
  expect(headers['x-content-type-options']).toBe('nosniff');
  expect(headers['content-encoding']).toMatch(/^(br|gzip)$/);

  const { pageA, pageB } = await twoUsers(browser, room, { a: ['Ann', 'fox'], b: ['Ben', 'owl'] });
  pageA.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
  });
  await sendMessage(pageA, 'under a strict policy');
  await expect(messageWithText(pageB, 'under a strict policy')).toHaveCount(1);
  expect(violations).toEqual([]);
});

test('too many joins from one address get a clear refusal in the form; others still join', async ({ browser }) => {
  const server = new OwnServer(3147, ['--joins-per-minute', '1', '--join-burst', '2']);
  await server.start();
  try {
    const room = uniqueRoom('abuse');
    for (const name of ['First', 'Second']) {
      const page = await (await browser.newContext({ baseURL: server.url })).newPage();
      await join(page, room, name, 'fox');
    }
    const page = await (await browser.newContext({ baseURL: server.url })).newPage();
    await openRoom(page, room);
    await page.getByTestId('name-input').fill('Third');
    await avatarRadio(page, 'owl').click();
    await page.getByTestId('join-button').click();
    await expect(page.locator('#room-error')).toHaveText(/Too many joins from your address; try again in a minute/);
    await expect(page.getByTestId('chat')).toHaveCount(0);

    // In the reader's language, with the WASM and without it (a plain post comes back named).
    const zh = await (await browser.newContext({ baseURL: server.url, locale: 'zh-CN' })).newPage();
    await openRoom(zh, room);
    await zh.getByTestId('name-input').fill('Fourth');
    await zh.getByTestId('join-button').click();
    await expect(zh.locator('#room-error')).toHaveText('你的地址加入次数过多，请一分钟后再试');
    const plain = await (await browser.newContext({ baseURL: server.url })).newPage();
    await plain.route('**/*.wasm', (route) => route.abort());
    await plain.goto(`/r/${room}`);
    await plain.getByTestId('name-input').fill('Fifth');
    await plain.getByTestId('join-button').click();
    await plain.waitForURL(/\?refused=too_many_joins$/);
    await expect(plain.locator('#room-error')).toHaveText('Too many joins from your address; try again in a minute');
  } finally {
    await server.stop();
  }
});
