import { expect, test, type Page } from '@playwright/test';
import {
  closeAllContexts,
  join,
  member,
  members,
  messageWithText,
  messages,
  openRoom,
  sendMessage,
  uniqueRoom,
  twoUsers,
  waitForHydration,
} from './helpers';

test.afterEach(async ({ browser }) => {
  await closeAllContexts(browser);
});

const IMG_PAYLOAD = '<img src=x onerror="window.__xss=1">';
const SCRIPT_PAYLOAD = '<script>window.__xss=2</script>';
const BOLD_NAME = '<b>bold</b>';

/** Nothing from the payloads became markup or ran at this page. */
async function expectNoInjection(page: Page): Promise<void> {
  const list = page.getByTestId('messages');
  await expect(list.locator('img[src="x"]')).toHaveCount(0);
  await expect(page.locator('img[src="x"]')).toHaveCount(0);
  // The only images in the message list are the messages' avatars.
  await expect(list.locator('img:not([data-testid="message-avatar"])')).toHaveCount(0);
  await expect(list.locator('script')).toHaveCount(0);
  await expect(page.getByTestId('member-list').locator('b')).toHaveCount(0);
  expect(await page.evaluate(() => (window as any).__xss)).toBeUndefined();
}

/** The message's text element holds exactly the literal payload as text. */
async function expectLiteralMessage(page: Page, text: string): Promise<void> {
  const message = messageWithText(page, text);
  await expect(message).toHaveCount(1);
  const textEl = message.getByTestId('message-text');
  expect(await textEl.evaluate((el) => el.textContent)).toBe(text);
}

test('message text and names are shown literally, never as HTML', async ({ browser }) => {
  const room = uniqueRoom('xss');
  const { ctxA, ctxB, pageA, pageB } = await twoUsers(browser, room);
  await expect(members(pageA)).toHaveCount(2);

  await sendMessage(pageA, IMG_PAYLOAD);
  await expect(messageWithText(pageB, IMG_PAYLOAD)).toHaveCount(1);
  await sendMessage(pageA, SCRIPT_PAYLOAD);
  await expect(messageWithText(pageB, SCRIPT_PAYLOAD)).toHaveCount(1);

  for (const page of [pageB, pageA]) {
    await expect(messages(page)).toHaveCount(2);
    await expectLiteralMessage(page, IMG_PAYLOAD);
    await expectLiteralMessage(page, SCRIPT_PAYLOAD);
    await expectNoInjection(page);
  }

  // A display name with markup is shown literally in the member list.
  const ctxC = await browser.newContext();
  const pageC = await ctxC.newPage();
  await join(pageC, room, BOLD_NAME, 'robot');
  for (const page of [pageA, pageB, pageC]) {
    await expect(members(page)).toHaveCount(3);
    const bold = member(page, BOLD_NAME);
    await expect(bold).toHaveCount(1);
    expect(await bold.getByTestId('member-name').evaluate((el) => el.textContent?.trim())).toBe(BOLD_NAME);
    await expect(page.getByTestId('member-list').locator('b')).toHaveCount(0);
  }

  // ... and literally as a message's sender name.
  await sendMessage(pageC, 'bold hello');
  const fromC = messageWithText(pageA, 'bold hello');
  await expect(fromC).toHaveCount(1);
  expect(await fromC.getByTestId('message-name').evaluate((el) => el.textContent?.trim())).toBe(BOLD_NAME);
  await expect(pageA.getByTestId('messages').locator('b')).toHaveCount(0);

  for (const page of [pageA, pageB, pageC]) {
    expect(await page.evaluate(() => (window as any).__xss)).toBeUndefined();
  }

  await ctxA.close();
  await ctxB.close();
  await ctxC.close();
});

test('a message that closes a script tag cannot break out of the page snapshot, for a visitor or a member who reloads', async ({
  browser,
}) => {
  const room = uniqueRoom('xssjson');
  const BREAKOUT = '</script><script>window.__xss=3</script><!--';
  const ann = await (await browser.newContext()).newPage();
  await join(ann, room, 'Ann', 'fox');
  await sendMessage(ann, BREAKOUT);
  await expectLiteralMessage(ann, BREAKOUT);

  // The server sends the room's snapshot in the page as JSON (`room-snapshot`): the visitor's
  // page hydrates, and its preview shows the message as text.
  const visitor = await (await browser.newContext()).newPage();
  await openRoom(visitor, room);
  await expect(visitor.getByTestId('join-form')).toBeVisible();
  await expectLiteralMessage(visitor, BREAKOUT);
  const snapshot = await visitor.locator('script#room-snapshot').evaluate((el) => JSON.parse(el.textContent ?? ''));
  expect(snapshot.Ok.recent.map((m: { text: string }) => m.text)).toEqual([BREAKOUT]);
  expect(await visitor.evaluate(() => (window as any).__xss)).toBeUndefined();

  // A member's reload hydrates the chat from it too.
  await ann.reload();
  await waitForHydration(ann);
  await expectLiteralMessage(ann, BREAKOUT);
  await expectNoInjection(ann);
});
