import { test, expect } from '@playwright/test';
import { join, messages, messageWithText, sendMessage, twoUsers, uniqueRoom, closeAllContexts } from './helpers';
import { OwnServer } from './server';

test.afterEach(async ({ browser }) => closeAllContexts(browser));

async function texts(page: import('@playwright/test').Page): Promise<string[]> {
  return page.getByTestId('messages').getByTestId('message-text').allInnerTexts();
}

test('a client that goes offline shows reconnecting, then gets what it missed in order, once', async ({ browser }) => {
  const room = uniqueRoom('off');
  const { ctxB, pageA: a, pageB: b } = await twoUsers(browser, room, { a: ['Ann', 'fox'], b: ['Ben', 'owl'] });
  await sendMessage(a, 'before');
  await expect(messageWithText(b, 'before')).toHaveCount(1);

  await ctxB.setOffline(true);
  await expect(b.getByTestId('connection-status')).toHaveAttribute('data-state', 'reconnecting');
  for (const t of ['missed 1', 'missed 2', 'missed 3']) await sendMessage(a, t);
  await expect(messageWithText(a, 'missed 3')).toHaveCount(1);

  await ctxB.setOffline(false);
  await expect(b.getByTestId('connection-status')).toHaveAttribute('data-state', 'online');
  await expect(messageWithText(b, 'missed 3')).toHaveCount(1);
  expect(await texts(b)).toEqual(['before', 'missed 1', 'missed 2', 'missed 3']);
  await expect(a.getByTestId('member-list').getByTestId('member')).toHaveCount(2);
});

test('a message typed while offline is pending, then delivered exactly once', async ({ browser }) => {
  const room = uniqueRoom('pend');
  const { ctxB, pageA: a, pageB: b } = await twoUsers(browser, room, { a: ['Ann', 'fox'], b: ['Ben', 'owl'] });

  await ctxB.setOffline(true);
  await expect(b.getByTestId('connection-status')).toHaveAttribute('data-state', 'reconnecting');
  await sendMessage(b, 'typed while offline');
  await expect(b.getByTestId('pending')).toHaveCount(1);
  await expect(messageWithText(b, 'typed while offline')).toHaveCount(0);

  await ctxB.setOffline(false);
  await expect(messageWithText(a, 'typed while offline')).toHaveCount(1);
  await expect(messageWithText(b, 'typed while offline')).toHaveCount(1);
  await expect(b.getByTestId('pending')).toHaveCount(0);
  // Still once after things settle.
  await sendMessage(a, 'after');
  await expect(messageWithText(b, 'after')).toHaveCount(1);
  await expect(messageWithText(a, 'typed while offline')).toHaveCount(1);
  await expect(messageWithText(b, 'typed while offline')).toHaveCount(1);
});

test('a server restart leaves the page working without a reload', async ({ browser }) => {
  const server = new OwnServer(3141);
  await server.start();
  try {
    const room = uniqueRoom('rst');
    const { pageA: a, pageB: b } = await twoUsers(browser, room, {
      a: ['Ann', 'fox'],
      b: ['Ben', 'owl'],
      baseURL: server.url,
    });
    await sendMessage(a, 'before restart');
    await expect(messageWithText(b, 'before restart')).toHaveCount(1);

    expect(await server.stop()).toBe(0);
    await expect(b.getByTestId('connection-status')).toHaveAttribute('data-state', 'reconnecting');
    await server.start();
    await expect(a.getByTestId('connection-status')).toHaveAttribute('data-state', 'online', { timeout: 15_000 });
    await expect(b.getByTestId('connection-status')).toHaveAttribute('data-state', 'online', { timeout: 15_000 });

    await sendMessage(b, 'after restart');
    await expect(messageWithText(a, 'after restart')).toHaveCount(1);
    expect(await texts(a)).toEqual(['before restart', 'after restart']);
    expect(await texts(b)).toEqual(['before restart', 'after restart']);
  } finally {
    await server.stop();
  }
});

test('older history loads in pages at the top', async ({ browser }) => {
  const server = new OwnServer(3142, ['--recent-messages', '5']);
  await server.start();
  try {
    const room = uniqueRoom('old');
    const ctxA = await browser.newContext({ baseURL: server.url });
    const a = await ctxA.newPage();
    await join(a, room, 'Ann', 'fox');
    for (let i = 1; i <= 12; i++) {
      await sendMessage(a, `m${i}`);
      await expect(messageWithText(a, `m${i}`)).toHaveCount(1);
    }
    const ctxB = await browser.newContext({ baseURL: server.url });
    const b = await ctxB.newPage();
    await join(b, room, 'Ben', 'owl');
    await expect(messages(b)).toHaveCount(5);
    expect(await texts(b)).toEqual(['m8', 'm9', 'm10', 'm11', 'm12']);
    await b.getByTestId('load-older').click();
    await expect(messages(b)).toHaveCount(10);
    // Not `click()`: its scrolling the button into view would itself load the rest when the list
    // overflows (scrolling to the top loads older history), and the button would go before the click.
    await b.getByTestId('load-older').dispatchEvent('click');
    await expect(messages(b)).toHaveCount(12);
    expect(await texts(b)).toEqual(Array.from({ length: 12 }, (_, i) => `m${i + 1}`));
    await expect(b.getByTestId('load-older')).toHaveCount(0);
  } finally {
    await server.stop();
  }
});

test('a silent server is noticed and the page reconnects when it answers again', async ({ browser }) => {
  // Heartbeats every second: the page gives up on silence after (1 + 1 + 5) s.
  const server = new OwnServer(3143, ['--ping-interval-secs', '1', '--pong-timeout-secs', '1']);
  await server.start();
  try {
    const room = uniqueRoom('frz');
    const { pageA: a, pageB: b } = await twoUsers(browser, room, { baseURL: server.url });
    server.signal('SIGSTOP');
    await expect(a.getByTestId('connection-status')).toHaveAttribute('data-state', 'reconnecting', {
      timeout: 15_000,
    });
    server.signal('SIGCONT');
    await expect(a.getByTestId('connection-status')).toHaveAttribute('data-state', 'online', { timeout: 15_000 });
    await expect(b.getByTestId('connection-status')).toHaveAttribute('data-state', 'online', { timeout: 15_000 });
    await sendMessage(a, 'after the freeze');
    await expect(messageWithText(b, 'after the freeze')).toHaveCount(1);
  } finally {
    server.signal('SIGCONT');
    await server.stop();
  }
});
