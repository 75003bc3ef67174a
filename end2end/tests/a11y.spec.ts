import AxeBuilder from '@axe-core/playwright';
import { expect, test, type Browser, type BrowserContext, type Locator, type Page } from '@playwright/test';
import {
  openMessageMenu as openMenu,
  closeAllContexts,
  join,
  member,
  messageWithText,
  openRoom,
  sendMessage,
  uniqueRoom,
  waitForChatOnline,
  waitForHydration,
} from './helpers';
import { OwnServer } from './server';

/**
 * WCAG 2.2 AA by axe-core: the join view, the chat (messages, a reaction, a reply; the message
 * menu, the reaction picker, a member's menu and the moderate panel open) and the status page,
 * in light and dark and in English and Chinese. Zero violations, no rule left out.
 */

const TAGS = ['wcag2a', 'wcag2aa', 'wcag21aa', 'wcag22aa'];
const ADMIN_TOKEN = 'e2e-a11y-admin-token-0123456789abcdef';
const BASE_PORT = Number(process.env.E2E_PORT ?? '3137');

let server: OwnServer;

test.beforeAll(async () => {
  server = new OwnServer(BASE_PORT + 1, ['--admin-token', ADMIN_TOKEN, '--metrics-public', 'true']);
  await server.start();
});

test.afterAll(async () => {
  await server?.stop();
});

test.afterEach(async ({ browser }) => {
  await closeAllContexts(browser);
});

/** Runs axe on the page as it is now and expects no violation (listed by rule and element when there are). */
async function expectNoViolations(page: Page, what: string): Promise<void> {
  const results = await new AxeBuilder({ page }).withTags(TAGS).analyze();
  const found = results.violations.map((v) => ({
    rule: v.id,
    impact: v.impact,
    nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary ?? ''}`),
  }));
  expect(found, `axe violations on ${what}`).toEqual([]);
  // Something was checked: axe passed rules on this view.
  expect(results.passes.length, `axe checked ${what}`).toBeGreaterThan(10);
}

/** A one-time moderator link for `name` in `room`, from the admin API. */
async function moderatorLink(room: string, name: string): Promise<string> {
  const response = await fetch(`${server.url}/api/admin/rooms/${room}/moderators`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { link: string }).link;
}

async function context(browser: Browser, colorScheme: 'light' | 'dark', locale: string): Promise<BrowserContext> {
  return browser.newContext({ baseURL: server.url, colorScheme, locale });
}

for (const colorScheme of ['light', 'dark'] as const) {
  for (const locale of ['en-US', 'zh-CN']) {
    test(`no WCAG 2.2 AA violations: ${colorScheme}, ${locale}`, async ({ browser }) => {
      test.setTimeout(120_000);
      const room = uniqueRoom('axe');
      const bobCtx = await browser.newContext({ baseURL: server.url });
      const bob = await bobCtx.newPage();
      await join(bob, room, 'Bob', 'owl');
      await sendMessage(bob, 'Hello from Bob, with a link https://example.com');
      await expect(messageWithText(bob, 'Hello from Bob, with a link https://example.com')).toHaveCount(1);

      const ctx = await context(browser, colorScheme, locale);
      const mo = await ctx.newPage();

      // The join view, with the room's recent messages and who is online.
      await openRoom(mo, room);
      await expect(mo.getByTestId('join-form')).toBeVisible();
      await expect(mo.getByTestId('messages').getByTestId('message')).toHaveCount(1);
      await expectNoViolations(mo, 'the join view');

      // The join form's errors too.
      await mo.getByTestId('join-button').click();
      await expect(mo.getByTestId('name-error')).toBeVisible();
      await expectNoViolations(mo, 'the join view with an error');

      // The chat, as a moderator, with messages, a reaction and a reply.
      await join(mo, room, 'Mo', 'fox');
      await mo.goto(await moderatorLink(room, 'Mo'));
      await waitForHydration(mo);
      await waitForChatOnline(mo);
      await expect(mo.getByTestId('moderate-button')).toBeVisible();
      await sendMessage(mo, 'Hi Bob, this is Mo');
      const mine = messageWithText(mo, 'Hi Bob, this is Mo');
      await expect(mine).toHaveCount(1);
      const bobs = messageWithText(mo, 'Hello from Bob, with a link https://example.com');
      let menu = await openMenu(bobs);
      await menu.getByTestId('menu-react').click();
      await menu.locator('[data-testid="pick-emoji"][data-emoji="🎉"]').click();
      await expect(bobs.getByTestId('reaction')).toHaveCount(1);
      menu = await openMenu(bobs);
      await menu.getByTestId('menu-reply').click();
      await sendMessage(mo, 'A reply to Bob');
      await expect(messageWithText(mo, 'A reply to Bob').getByTestId('quote')).toHaveCount(1);
      await expect(member(mo, 'Bob')).toHaveCount(1);
      await expectNoViolations(mo, 'the chat');

      // The message menu open, then the reaction picker.
      menu = await openMenu(bobs);
      await expect(menu.getByRole('menu')).toBeVisible();
      await expectNoViolations(mo, 'the chat with a message menu open');
      await menu.getByTestId('menu-react').click();
      await expect(menu.getByTestId('emoji-picker')).toBeVisible();
      await expectNoViolations(mo, 'the chat with the reaction picker open');
      await mo.keyboard.press('Escape');
      await expect(menu).toHaveCount(0);

      // A member's moderation menu, and one of its forms.
      const bobEntry = member(mo, 'Bob');
      const moderateBob = bobEntry.getByTestId('member-menu-button');
      await expect(moderateBob).toHaveAccessibleName(locale === 'zh-CN' ? '管理 Bob' : 'Moderate Bob');
      await moderateBob.click();
      const memberMenu = bobEntry.getByTestId('member-menu');
      await expect(memberMenu.getByRole('menu')).toBeVisible();
      await expectNoViolations(mo, 'the chat with a member menu open');
      await memberMenu.getByTestId('member-mute').click();
      await expect(memberMenu.getByTestId('member-action-form')).toBeVisible();
      await expectNoViolations(mo, 'the chat with a member action form open');
      await mo.keyboard.press('Escape');
      await expect(memberMenu).toHaveCount(0);

      // The moderate panel, with its audit log.
      await mo.getByTestId('moderate-button').click();
      const panel = mo.getByTestId('moderate-panel');
      await expect(panel).toBeVisible();
      await panel.getByTestId('audit-button').click();
      await expect(panel.getByTestId('audit-log')).toBeVisible();
      await expectNoViolations(mo, 'the chat with the moderate panel open');
      await mo.keyboard.press('Escape');
      await expect(panel).toHaveCount(0);
      await expect(mo.getByTestId('moderate-button')).toBeFocused();

      // The status page.
      await mo.goto('/status');
      await waitForHydration(mo);
      await expect(mo.getByTestId('status-connections')).toBeVisible();
      await expectNoViolations(mo, 'the status page');
    });
  }
}

test('new messages from others are announced politely, not the history', async ({ browser }) => {
  const room = uniqueRoom('live');
  const bobCtx = await browser.newContext({ baseURL: server.url });
  const bob = await bobCtx.newPage();
  await join(bob, room, 'Bob', 'owl');
  await sendMessage(bob, 'history before Ann came');
  await expect(messageWithText(bob, 'history before Ann came')).toHaveCount(1);

  const annCtx = await browser.newContext({ baseURL: server.url });
  const ann = await annCtx.newPage();
  await join(ann, room, 'Ann', 'fox');
  const announcer = ann.getByTestId('announcer');
  await expect(announcer).toHaveAttribute('aria-live', 'polite');
  // The list itself is no live region (it would read out the history again on a resume).
  await expect(ann.getByTestId('messages')).not.toHaveAttribute('aria-live');
  await expect(messageWithText(ann, 'history before Ann came')).toHaveCount(1);
  await expect(announcer).toHaveText('');

  await sendMessage(bob, 'a new one');
  await expect(announcer).toHaveText('Bob: a new one');
  // Her own messages are not read back to her.
  await sendMessage(ann, 'mine');
  await expect(messageWithText(ann, 'mine')).toHaveCount(1);
  await expect(announcer).toHaveText('Bob: a new one');
  // Deleted by its author, it is no longer in the page.
  const menu = await openMenu(messageWithText(bob, 'a new one'));
  await menu.getByTestId('menu-delete').click();
  await menu.getByTestId('confirm-delete-button').click();
  await expect(ann.getByTestId('message-deleted')).toHaveCount(1);
  await expect(announcer).toHaveText('');
  await sendMessage(bob, 'and another');
  await expect(announcer).toHaveText('Bob: and another');

  // A reload shows the history again, silently.
  await ann.reload();
  await waitForHydration(ann);
  await waitForChatOnline(ann);
  await expect(messageWithText(ann, 'and another')).toHaveCount(1);
  await expect(ann.getByTestId('announcer')).toHaveText('');
});

test('reduced motion turns transitions off', async ({ browser }) => {
  const ctx = await browser.newContext({ baseURL: server.url, reducedMotion: 'reduce' });
  const page = await ctx.newPage();
  await openRoom(page, uniqueRoom('motion'));
  const option = page.getByTestId('avatar-picker').locator('label.avatar-option').first();
  const duration = await option.evaluate((el) => parseFloat(getComputedStyle(el).transitionDuration));
  expect(duration).toBeLessThan(0.001);

  const moving = await browser.newContext({ baseURL: server.url, reducedMotion: 'no-preference' });
  const other = await moving.newPage();
  await openRoom(other, uniqueRoom('motion'));
  const normal = other.getByTestId('avatar-picker').locator('label.avatar-option').first();
  expect(await normal.evaluate((el) => parseFloat(getComputedStyle(el).transitionDuration))).toBeGreaterThan(0.01);
});

test('what a screen reader is given: named fields, one name per avatar, the conversation as a list', async ({ browser }) => {
  const page = await (await browser.newContext({ baseURL: server.url })).newPage();
  const room = uniqueRoom('reader');
  await openRoom(page, room);
  await waitForHydration(page);
  await expect(page.locator('main')).toMatchAriaSnapshot(`
    - heading "Join the room" [level=2]
    - textbox "Display name"
    - group "Avatar":
      - radiogroup "Avatar":
        - radio "Fox" [checked]
        - radio "Owl"
    - button "Join"
    - complementary:
      - heading "Online now" [level=2]
  `);
  // Each avatar is read once, by its radio: the picture beside it says nothing more.
  await expect(page.getByRole('radiogroup').getByRole('img')).toHaveCount(0);

  await join(page, room, 'Ari', 'fox');
  await sendMessage(page, 'hello screen readers');
  await expect(page.locator('body')).toMatchAriaSnapshot(`
    - banner:
      - heading /^#reader-/ [level=1]
      - status: /Online/
      - textbox "Room"
      - combobox "Language"
    - main:
      - complementary "Members":
        - heading "Members" [level=2]
        - list:
          - listitem: Ari (you)
        - button "Leave room"
      - region "Conversation":
        - list "Messages":
          - listitem:
            - text: Ari
            - time
            - paragraph: hello screen readers
            - button "More actions"
        - textbox "Message"
        - button "Send"
  `);
  await expect(page.getByRole('region', { name: 'Conversation' }).getByRole('img')).toHaveCount(0);
});
