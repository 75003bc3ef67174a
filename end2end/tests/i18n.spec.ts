import { expect, test, type Page } from '@playwright/test';
import {
  avatarRadio,
  closeAllContexts,
  exactly,
  join,
  messageWithText,
  notices,
  openRoom,
  sendMessage,
  uniqueRoom,
  waitForHydration,
} from './helpers';

test.afterEach(async ({ browser }) => {
  await closeAllContexts(browser);
});

/** The page's raw HTML as the server sends it for these request headers (no script runs on it). */
async function rawHtml(
  baseURL: string,
  path: string,
  headers: Record<string, string>,
  status = 200,
): Promise<string> {
  const response = await fetch(new URL(path, baseURL), { headers });
  expect(response.status).toBe(status);
  return response.text();
}

test('the server renders the language of Accept-Language from the first byte, English by default', async ({
  baseURL,
}) => {
  const room = uniqueRoom('lang');
  const zh = await rawHtml(baseURL!, `/r/${room}`, { 'Accept-Language': 'zh-CN,zh;q=0.9,en;q=0.8' });
  expect(zh).toMatch(/<html[^>]* lang="zh-CN"/);
  expect(zh).toContain('加入聊天室');
  expect(zh).toContain('昵称');
  expect(zh).toContain(`<title>#${room} · 聊天室</title>`);
  expect(zh).not.toContain('Join the room');

  const en = await rawHtml(baseURL!, `/r/${room}`, { 'Accept-Language': 'en-US,en;q=0.9' });
  expect(en).toMatch(/<html[^>]* lang="en"/);
  expect(en).toContain('Join the room');
  expect(en).toContain(`<title>#${room} · Chat</title>`);
  expect(en).not.toContain('加入聊天室');

  // No header, or only languages we do not have: English.
  for (const headers of [{}, { 'Accept-Language': 'fr-FR,de;q=0.8' }] as Record<string, string>[]) {
    const html = await rawHtml(baseURL!, `/r/${room}`, headers);
    expect(html).toMatch(/<html[^>]* lang="en"/);
    expect(html).toContain('Join the room');
  }
  // The cookie wins over the header.
  const chosen = await rawHtml(baseURL!, `/r/${room}`, { 'Accept-Language': 'en', Cookie: 'lang=zh' });
  expect(chosen).toMatch(/<html[^>]* lang="zh-CN"/);
});

test.describe('a zh-CN browser', () => {
  test.use({ locale: 'zh-CN' });

  test('sees Chinese before any script runs, and after hydration', async ({ browser }) => {
    const room = uniqueRoom('zh');
    // Scripts off: what shows is the server's HTML alone.
    const bare = await browser.newContext({ locale: 'zh-CN', javaScriptEnabled: false });
    const page = await bare.newPage();
    await page.goto(`/r/${room}`);
    await expect(page.locator('html')).toHaveAttribute('lang', 'zh-CN');
    // The room streams in after its data: without scripts the page may still show its fallback, in Chinese too.
    const body = page.locator('body');
    await expect(body).toContainText(/加入聊天室|加载中…/);
    await expect(body).not.toContainText(/Join the room|Loading…/);
    await expect(page).toHaveTitle(/聊天室$/);

    // Hydrated, the same words (no flash of English).
    const live = await browser.newContext({ locale: 'zh-CN' });
    const livePage = await live.newPage();
    await openRoom(livePage, room);
    await expect(livePage.locator('html')).toHaveAttribute('lang', 'zh-CN');
    await expect(livePage.getByTestId('join-button')).toHaveText('加入');
    await expect(livePage.getByTestId('language-select')).toHaveValue('zh');
  });

  test('a name taken is refused in Chinese (the server sends a code, the page words it)', async ({ browser }) => {
    const room = uniqueRoom('taken');
    const first = await (await browser.newContext({ locale: 'en-US' })).newPage();
    await join(first, room, 'Alice', 'fox');

    const page = await (await browser.newContext({ locale: 'zh-CN' })).newPage();
    await openRoom(page, room);
    await page.getByTestId('name-input').fill('Alice');
    await avatarRadio(page, 'owl').click();
    await page.getByTestId('join-button').click();
    await expect(page.getByTestId('name-error')).toHaveText('这个名字在本聊天室已被占用');
    await expect(page.getByTestId('chat')).toHaveCount(0);
  });

  test('counts are worded with each language\'s plural forms', async ({ browser }) => {
    const room = uniqueRoom('plural');
    const en = await (await browser.newContext({ locale: 'en-US' })).newPage();
    await join(en, room, 'Alice', 'fox');
    await expect(en.getByTestId('online-count')).toHaveText(exactly('1 person online'));

    const zh = await (await browser.newContext({ locale: 'zh-CN' })).newPage();
    await join(zh, room, 'Bob', 'owl');
    await expect(en.getByTestId('online-count')).toHaveText(exactly('2 people online'));
    await expect(zh.getByTestId('online-count')).toHaveText(exactly('2 人在线'));
    await expect(notices(en).last()).toHaveText(exactly('Bob joined'));

    // Typing, worded for the reader.
    await zh.getByTestId('composer').fill('h');
    await expect(en.getByTestId('typing')).toHaveText(exactly('Bob is typing…'));
  });
});

test.describe('an English browser', () => {
  test.use({ locale: 'en-US' });

  test('switches to Chinese in place: same messages, same socket, and the choice survives a reload', async ({
    browser,
  }) => {
    const room = uniqueRoom('switch');
    const context = await browser.newContext({ locale: 'en-US' });
    const page = await context.newPage();
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await join(page, room, 'Alice', 'fox');
    await expect(page.locator('html')).toHaveAttribute('lang', 'en');
    await expect(page.getByTestId('send-button')).toHaveText('Send');

    const other = await (await browser.newContext({ locale: 'en-US' })).newPage();
    await join(other, room, 'Bob', 'owl');
    await sendMessage(page, 'hello before the switch');
    await expect(messageWithText(page, 'hello before the switch')).toHaveCount(1);
    await expect(notices(page).last()).toHaveText(exactly('Bob joined'));

    await page.getByRole('combobox', { name: 'Language' }).selectOption('zh');

    await expect(page.locator('html')).toHaveAttribute('lang', 'zh-CN');
    await expect(page.getByTestId('send-button')).toHaveText('发送');
    await expect(page.getByTestId('composer')).toHaveAttribute('placeholder', /按 Enter 发送/);
    await expect(page.getByTestId('online-count')).toHaveText(exactly('2 人在线'));
    // What was on the page is still there, reworded where it is ours to word.
    await expect(messageWithText(page, 'hello before the switch')).toHaveCount(1);
    await expect(notices(page).last()).toHaveText(exactly('Bob 加入了'));
    await expect(page.getByTestId('connection-status')).toHaveText('在线');
    await expect(page).toHaveTitle(`#${room} · 聊天室`);

    // The same live connection brings what is said next.
    await sendMessage(other, 'after the switch');
    await expect(messageWithText(page, 'after the switch')).toHaveCount(1);
    expect(sockets).toHaveLength(1);

    // Remembered: the next page is Chinese from the server on.
    await page.reload();
    await waitForHydration(page);
    await expect(page.locator('html')).toHaveAttribute('lang', 'zh-CN');
    await expect(page.getByTestId('send-button')).toHaveText('发送');
    await expect(page.getByTestId('language-select')).toHaveValue('zh');

    // And back.
    await page.getByTestId('language-select').selectOption('en');
    await expect(page.getByTestId('send-button')).toHaveText('Send');
    await expect(page.locator('html')).toHaveAttribute('lang', 'en');
  });

  test('the 404 page and the status page follow the language too', async ({ browser, baseURL }) => {
    const html = await rawHtml(baseURL!, '/no/such/page', { 'Accept-Language': 'zh-CN' }, 404);
    expect(html).toContain('页面不存在');
    const page: Page = await (await browser.newContext({ locale: 'zh-CN' })).newPage();
    await page.goto('/status');
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('服务器状态');
    await expect(page).toHaveTitle('状态 · 聊天室');
  });
});
