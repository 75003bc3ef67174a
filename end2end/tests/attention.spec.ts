import { expect, test, type Browser, type BrowserContext, type Page } from '@playwright/test';
import {
  closeAllContexts,
  join,
  messageWithText,
  messages,
  sendMessage,
  uniqueRoom,
  waitForChatOnline,
} from './helpers';

test.afterEach(async ({ browser }) => {
  await closeAllContexts(browser);
});

/** A member in a browser context of their own. */
async function member(
  browser: Browser,
  room: string,
  name: string,
  avatar: string,
  options: { init?: () => void; permissions?: string[] } = {},
): Promise<{ ctx: BrowserContext; page: Page }> {
  const ctx = await browser.newContext();
  if (options.permissions) {
    await ctx.grantPermissions(options.permissions);
  }
  if (options.init) {
    await ctx.addInitScript(options.init);
  }
  const page = await ctx.newPage();
  await join(page, room, name, avatar);
  return { ctx, page };
}

/**
 * Pretends the tab went to the background (or came back), as the browser reports it: the
 * document's `visibilityState` changes and `visibilitychange` fires at the document and bubbles.
 */
async function setHidden(page: Page, hidden: boolean): Promise<void> {
  await page.evaluate((hidden) => {
    Object.defineProperty(document, 'visibilityState', {
      value: hidden ? 'hidden' : 'visible',
      configurable: true,
    });
    Object.defineProperty(document, 'hidden', { value: hidden, configurable: true });
    document.dispatchEvent(new Event('visibilitychange', { bubbles: true }));
  }, hidden);
}

const title = (room: string) => `#${room} · Chat`;

test('@ opens a list of members: arrows and Enter pick one, and only that member sees the mention highlighted', async ({
  browser,
}) => {
  const room = uniqueRoom('mention');
  const ann = await member(browser, room, 'Ann', 'fox');
  const bea = await member(browser, room, 'Bea', 'owl');
  const ben = await member(browser, room, 'Ben', 'cat');

  const composer = ann.page.getByTestId('composer');
  const list = ann.page.getByRole('listbox', { name: 'Members to mention' });
  const options = list.getByRole('option');
  await expect(composer).toHaveAttribute('aria-controls', /./);
  await expect(list).toBeHidden();

  // "@b" offers Bea and Ben (members in join order; not Ann herself), the first one active.
  await composer.click();
  await composer.pressSequentially('@b');
  await expect(list).toBeVisible();
  await expect(options).toHaveText(['Bea', 'Ben']);
  await expect(options.nth(0)).toHaveAttribute('aria-selected', 'true');
  await expect(composer).toHaveAttribute('aria-activedescendant', (await options.nth(0).getAttribute('id'))!);

  // ArrowDown moves to Ben; Enter inserts "@Ben " and sends nothing.
  await composer.press('ArrowDown');
  await expect(options.nth(1)).toHaveAttribute('aria-selected', 'true');
  await expect(composer).toHaveAttribute('aria-activedescendant', (await options.nth(1).getAttribute('id'))!);
  await composer.press('Enter');
  await expect(composer).toHaveValue('@Ben ');
  await expect(list).toBeHidden();
  await expect(composer).not.toHaveAttribute('aria-activedescendant', /./);

  // Typing on, then Enter sends the message as usual.
  await composer.pressSequentially('lunch?');
  await composer.press('Enter');
  const text = '@Ben lunch?';
  for (const page of [ann.page, bea.page, ben.page]) {
    await expect(messageWithText(page, text)).toHaveCount(1);
    // The mention is styled in every message.
    await expect(messageWithText(page, text).getByTestId('mention')).toHaveText('@Ben');
  }
  await expect(messages(ann.page)).toHaveCount(1);

  // Ben sees it highlighted as a mention of him, with a hint for screen readers; Bea (and Ann) do not.
  const atBen = messageWithText(ben.page, text);
  await expect(atBen.getByTestId('message-text')).toHaveClass(/\bmentions-me\b/);
  await expect(atBen.getByTestId('mention-hint')).toHaveText('Mentions you');
  for (const page of [bea.page, ann.page]) {
    const there = messageWithText(page, text);
    await expect(there.getByTestId('message-text')).not.toHaveClass(/\bmentions-me\b/);
    await expect(there.getByTestId('mention-hint')).toHaveCount(0);
  }

  // Esc closes the list without inserting anything; Tab and a mouse click pick too.
  await composer.pressSequentially('@');
  await expect(options).toHaveText(['Bea', 'Ben']);
  await composer.press('Escape');
  await expect(list).toBeHidden();
  await expect(composer).toHaveValue('@');
  await composer.pressSequentially('be');
  await expect(list).toBeHidden();
  await composer.fill('');
  await composer.pressSequentially('hi @be');
  await expect(options).toHaveText(['Bea', 'Ben']);
  await composer.press('Tab');
  await expect(composer).toHaveValue('hi @Bea ');
  await expect(composer).toBeFocused();
  await composer.pressSequentially('and @BE');
  await options.filter({ hasText: 'Ben' }).click();
  await expect(composer).toHaveValue('hi @Bea and @Ben ');
  await expect(composer).toBeFocused();
  await composer.press('Enter');
  for (const page of [bea.page, ben.page]) {
    const both = messageWithText(page, 'hi @Bea and @Ben');
    await expect(both.getByTestId('mention')).toHaveText(['@Bea', '@Ben']);
    await expect(both.getByTestId('message-text')).toHaveClass(/\bmentions-me\b/);
  }
});

test('a hidden tab counts new messages in its title, (@) for a mention, and marks where the reader left off', async ({
  browser,
}) => {
  const room = uniqueRoom('unread');
  const ann = await member(browser, room, 'Ann', 'fox');
  const ben = await member(browser, room, 'Ben', 'owl');
  await expect(ben.page).toHaveTitle(title(room));

  await sendMessage(ann.page, 'before you left');
  await expect(messageWithText(ben.page, 'before you left')).toHaveCount(1);
  await expect(ben.page).toHaveTitle(title(room));

  await setHidden(ben.page, true);
  for (const text of ['one', 'two', 'three']) {
    await sendMessage(ann.page, text);
  }
  await expect(ben.page).toHaveTitle(`(3) ${title(room)}`);
  await sendMessage(ann.page, 'look at this @ben, please');
  await expect(ben.page).toHaveTitle(`(@) (4) ${title(room)}`);
  // Her own messages never count for Ann.
  await expect(messageWithText(ann.page, 'look at this @ben, please')).toHaveCount(1);
  await expect(ann.page).toHaveTitle(title(room));

  // Back: the count goes, and "New messages" sits between what Ben had seen and the first he had not.
  await setHidden(ben.page, false);
  await expect(ben.page).toHaveTitle(title(room));
  const divider = ben.page.getByTestId('new-messages');
  await expect(divider).toHaveCount(1);
  await expect(divider).toHaveText('New messages');
  const list = ben.page.getByTestId('messages');
  await expect(list.locator('[data-testid="new-messages"] + li').getByTestId('message-text')).toHaveText('one');
  await expect(list.locator('li:has(+ [data-testid="new-messages"])').getByTestId('message-text')).toHaveText(
    'before you left',
  );

  // It stays while Ben reads on, and goes when he posts.
  await sendMessage(ann.page, 'still there?');
  await expect(messageWithText(ben.page, 'still there?')).toHaveCount(1);
  await expect(divider).toHaveCount(1);
  await expect(ben.page).toHaveTitle(title(room));
  await sendMessage(ben.page, 'yes');
  await expect(messageWithText(ben.page, 'yes')).toHaveCount(1);
  await expect(divider).toHaveCount(0);

  // Next time away it marks the new first unread message.
  await setHidden(ben.page, true);
  await sendMessage(ann.page, 'again');
  await expect(ben.page).toHaveTitle(`(1) ${title(room)}`);
  await setHidden(ben.page, false);
  await expect(ben.page).toHaveTitle(title(room));
  await expect(list.locator('[data-testid="new-messages"] + li').getByTestId('message-text')).toHaveText('again');
  await expect(divider).toHaveCount(1);
});

test('links open in a new tab without the opener; markup and javascript: stay literal text', async ({ browser, baseURL }) => {
  const room = uniqueRoom('links');
  const ann = await member(browser, room, 'Ann', 'fox');
  const ben = await member(browser, room, 'Ben', 'owl');
  const dialogs: string[] = [];
  const errors: string[] = [];
  for (const page of [ann.page, ben.page]) {
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    // A server-rendered message that hydrated differently would show up here.
    page.on('pageerror', (e) => errors.push(e.message));
  }

  const url = `${baseURL}/healthz?from=chat`;
  const withLink = `status (see ${url}).`;
  const payloads = [
    '<script>window.__xss = 1; alert(1)</script>',
    'javascript:alert(1)',
    '<img src=x onerror=alert(1)>',
    '<a href="javascript:alert(1)">click</a>',
    '[click](javascript:alert(1)) data:text/html,<b>x</b>',
  ];
  await sendMessage(ann.page, withLink);
  for (const p of payloads) {
    await sendMessage(ann.page, p);
  }

  const check = async (page: Page) => {
    await expect(messages(page)).toHaveCount(1 + payloads.length);
    const link = messageWithText(page, withLink).getByRole('link');
    await expect(link).toHaveCount(1);
    await expect(link).toHaveText(url);
    await expect(link).toHaveAttribute('href', url);
    await expect(link).toHaveAttribute('target', '_blank');
    await expect(link).toHaveAttribute('rel', 'noopener noreferrer nofollow ugc');
    for (const p of payloads) {
      const text = messageWithText(page, p).getByTestId('message-text');
      await expect(text).toHaveCount(1);
      expect(await text.evaluate((el) => el.textContent)).toBe(p);
      await expect(text.locator('*')).toHaveCount(0);
    }
    // The one link is the http one: no javascript: or data: href anywhere, no injected element.
    await expect(page.getByTestId('messages').locator('a')).toHaveCount(1);
    await expect(page.locator('a[href^="javascript:" i], a[href^="data:" i]')).toHaveCount(0);
    await expect(page.locator('img[src="x"], [data-testid="messages"] script')).toHaveCount(0);
    expect(await page.evaluate(() => (window as any).__xss)).toBeUndefined();
  };
  await check(ben.page);
  await check(ann.page);

  // The server's first paint renders the same links and text.
  await ben.page.reload();
  await waitForChatOnline(ben.page);
  await check(ben.page);

  // Clicked, the link opens in a new tab that cannot reach back to the chat, and gets no referrer.
  const [tab] = await Promise.all([
    ben.ctx.waitForEvent('page'),
    messageWithText(ben.page, withLink).getByRole('link').click(),
  ]);
  await tab.waitForLoadState();
  expect(tab.url()).toBe(url);
  expect(await tab.evaluate(() => window.opener)).toBeNull();
  expect(await tab.evaluate(() => document.referrer)).toBe('');
  await tab.close();

  expect(dialogs).toEqual([]);
  expect(errors).toEqual([]);
});

test('mention notifications: asked for only after a click on the bell, shown for a mention in a hidden tab', async ({
  browser,
}) => {
  const room = uniqueRoom('notify');

  // Permission requests are counted; the browser's own answer is not needed.
  const countRequests = () => {
    (window as any).__permissionRequests = 0;
    Notification.requestPermission = () => {
      (window as any).__permissionRequests += 1;
      return Promise.resolve('granted' as NotificationPermission);
    };
  };
  const ann = await member(browser, room, 'Ann', 'fox', { init: countRequests });
  const bell = ann.page.getByRole('button', { name: 'Notify me of mentions' });
  await expect(bell).toHaveAttribute('aria-pressed', 'false');
  // Loading and joining asked nothing; so does a reload.
  await ann.page.reload();
  await waitForChatOnline(ann.page);
  await expect(bell).toHaveAttribute('aria-pressed', 'false');
  expect(await ann.page.evaluate(() => (window as any).__permissionRequests)).toBe(0);
  await bell.click();
  await expect.poll(() => ann.page.evaluate(() => (window as any).__permissionRequests)).toBe(1);
  await expect(bell).toHaveAttribute('aria-pressed', 'true');
  // Clicked again, the bell goes off without asking.
  await bell.click();
  await expect(bell).toHaveAttribute('aria-pressed', 'false');
  expect(await ann.page.evaluate(() => (window as any).__permissionRequests)).toBe(1);

  // Ben's browser allows notifications; each one made is recorded instead of shown.
  const recordNotifications = () => {
    const shown: { title: string; body?: string }[] = [];
    (window as any).__notifications = shown;
    class RecordedNotification {
      onclick: unknown = null;
      constructor(title: string, options?: NotificationOptions) {
        shown.push({ title, body: options?.body });
      }
      static get permission() {
        return 'granted';
      }
      static requestPermission() {
        return Promise.resolve('granted');
      }
      close() {}
    }
    (window as any).Notification = RecordedNotification;
  };
  const ben = await member(browser, room, 'Ben', 'owl', {
    init: recordNotifications,
    permissions: ['notifications'],
  });
  const benBell = ben.page.getByRole('button', { name: 'Notify me of mentions' });
  await benBell.click();
  await expect(benBell).toHaveAttribute('aria-pressed', 'true');
  // Remembered across visits.
  await ben.page.reload();
  await waitForChatOnline(ben.page);
  await expect(benBell).toHaveAttribute('aria-pressed', 'true');
  const shown = () => ben.page.evaluate(() => (window as any).__notifications);

  // While Ben looks, a mention shows in the page only.
  await sendMessage(ann.page, 'hi @Ben, welcome');
  await expect(messageWithText(ben.page, 'hi @Ben, welcome')).toHaveCount(1);

  // Hidden: a plain message makes no notification, a mention does.
  await setHidden(ben.page, true);
  await sendMessage(ann.page, 'just chatting');
  await sendMessage(ann.page, '@ben can you look at this?');
  await expect
    .poll(shown)
    .toEqual([{ title: `#${room}`, body: 'Ann: @ben can you look at this?' }]);
  await expect(ben.page).toHaveTitle(`(@) (2) ${title(room)}`);
});
