import { expect, test, type Browser, type BrowserContext, type Locator, type Page } from '@playwright/test';
import {
  closeAllContexts,
  exactly,
  join,
  member,
  messageWithText,
  notices,
  sendMessage,
  uniqueRoom,
  waitForChatOnline,
  waitForHydration,
} from './helpers';
import { OwnServer } from './server';

/**
 * Moderation as people see it: a moderator (made through the admin API and a claim link) and a
 * member, each in a browser context of their own, on a server of this file's own (with an admin
 * token); and the owner link of a new room on a second server (`room_owner_on_create`).
 */

const ADMIN_TOKEN = 'e2e-moderation-admin-token-0123456789';
const BASE_PORT = Number(process.env.E2E_PORT ?? '3137');

let adminServer: OwnServer;
let ownerServer: OwnServer;

test.beforeAll(async () => {
  adminServer = new OwnServer(BASE_PORT + 1, ['--admin-token', ADMIN_TOKEN]);
  ownerServer = new OwnServer(BASE_PORT + 2, ['--room-owner-on-create', 'true']);
  await Promise.all([adminServer.start(), ownerServer.start()]);
});

test.afterAll(async () => {
  await Promise.all([adminServer?.stop(), ownerServer?.stop()]);
});

test.afterEach(async ({ browser }) => {
  await closeAllContexts(browser);
});

async function newPage(browser: Browser, server: OwnServer): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ baseURL: server.url });
  return { context, page: await context.newPage() };
}

/** Asks the admin API for a one-time moderator link for `name` in `room`. */
async function moderatorLink(room: string, name: string): Promise<string> {
  const response = await fetch(`${adminServer.url}/api/admin/rooms/${room}/moderators`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { token: string; link: string };
  expect(body.link).toBe(`/r/${room}?claim=${body.token}`);
  return body.link;
}

/** Opens the "⋯" menu of `message`. */
async function openMessageMenu(message: Locator): Promise<Locator> {
  await message.hover();
  await message.getByTestId('message-menu-button').click();
  const menu = message.getByTestId('message-menu');
  await expect(menu).toBeVisible();
  return menu;
}

/** Opens the moderator's menu on member `name` and picks `item` (its test id). */
async function memberAction(page: Page, name: string, item: string): Promise<Locator> {
  const entry = member(page, name);
  await entry.getByRole('button', { name: `Moderate ${name}` }).click();
  const menu = entry.getByTestId('member-menu');
  await expect(menu.getByRole('menu')).toBeVisible();
  await menu.getByTestId(item).click();
  const form = menu.getByTestId('member-action-form');
  await expect(form).toBeVisible();
  return form;
}

/** Opens the header's Moderate panel (if it is closed). */
async function moderatePanel(page: Page): Promise<Locator> {
  const panel = page.getByTestId('moderate-panel');
  if (!(await panel.isVisible())) {
    await page.getByTestId('moderate-button').click();
  }
  await expect(panel).toBeVisible();
  return panel;
}

test('a moderator removes, mutes, sets the room up, kicks and bans; the member sees each', async ({ browser }) => {
  test.setTimeout(120_000);
  const room = uniqueRoom('mod');
  const { page: mo } = await newPage(browser, adminServer);
  const { page: bob } = await newPage(browser, adminServer);
  await join(mo, room, 'Mo', 'fox');
  await join(bob, room, 'Bob', 'owl');
  await expect(member(mo, 'Bob')).toHaveCount(1);
  // A member has no moderation tools.
  await expect(bob.getByTestId('moderate-button')).toHaveCount(0);
  await expect(bob.getByTestId('member-menu-button')).toHaveCount(0);

  // The operator makes Mo a moderator: Mo opens the link, which is then taken out of the address.
  const link = await moderatorLink(room, 'Mo');
  await mo.goto(link);
  await waitForHydration(mo);
  await waitForChatOnline(mo);
  await expect(notices(bob).filter({ hasText: exactly('Mo is now a moderator') })).toHaveCount(1);
  await expect(mo.getByTestId('moderate-button')).toBeVisible();
  await expect(mo).toHaveURL(new RegExp(`/r/${room}$`));
  await expect(member(mo, 'Mo').getByTestId('member-menu-button')).toHaveCount(0);

  // Remove: both see the message removed by a moderator.
  await sendMessage(bob, 'buy cheap watches');
  const spam = messageWithText(mo, 'buy cheap watches');
  await expect(spam).toHaveCount(1);
  const spamId = await spam.getAttribute('data-id');
  const menu = await openMessageMenu(spam);
  await menu.getByTestId('menu-remove').click();
  await menu.getByTestId('remove-reason').fill('spam');
  await menu.getByTestId('confirm-remove-button').click();
  for (const page of [mo, bob]) {
    const removed = page.getByTestId('messages').locator(`li[data-testid="message"][data-id="${spamId}"]`);
    await expect(removed.getByTestId('message-removed')).toHaveText('removed by a moderator');
    await expect(page.getByText('buy cheap watches')).toHaveCount(0);
    await expect(notices(page).filter({ hasText: exactly('Mo removed a message: spam') })).toHaveCount(1);
  }

  // Mute for 10 minutes: Bob's composer says so and is closed; the server refuses a send too.
  let form = await memberAction(mo, 'Bob', 'member-mute');
  await form.getByRole('radio', { name: '10 minutes' }).check();
  await form.getByTestId('mod-reason').fill('cool off');
  await form.getByTestId('mod-confirm').click();
  await expect(notices(bob).filter({ hasText: exactly('Mo muted Bob for 10 minutes: cool off') })).toHaveCount(1);
  await expect(bob.getByTestId('composer-block')).toHaveText(/^You are muted until \d\d:\d\d$/);
  await expect(bob.getByTestId('composer')).toBeDisabled();
  await expect(bob.getByTestId('send-button')).toBeDisabled();
  const refused = await bob.evaluate(async (room) => {
    return await new Promise<string>((resolve) => {
      const ws = new WebSocket(`ws://${location.host}/ws/${room}`);
      ws.onopen = () => ws.send(JSON.stringify({ type: 'join' }));
      ws.onmessage = (ev) => {
        const frame = JSON.parse(ev.data);
        if (frame.type === 'welcome') ws.send(JSON.stringify({ type: 'send', client_id: 'muted-1', text: 'let me talk' }));
        if (frame.type === 'error') {
          ws.close();
          resolve(frame.code);
        }
      };
      ws.onclose = () => resolve('closed');
    });
  }, room);
  expect(refused).toBe('muted');
  await expect(messageWithText(mo, 'let me talk')).toHaveCount(0);

  // Unmute: Bob may talk again.
  form = await memberAction(mo, 'Bob', 'member-unmute');
  await form.getByTestId('mod-confirm').click();
  await expect(notices(bob).filter({ hasText: exactly('Mo unmuted Bob') })).toHaveCount(1);
  await expect(bob.getByTestId('composer-block')).toBeHidden();
  await expect(bob.getByTestId('composer')).toBeEnabled();
  await sendMessage(bob, 'sorry about that');
  await expect(messageWithText(mo, 'sorry about that')).toHaveCount(1);

  // The topic is shown as plain text to both.
  let panel = await moderatePanel(mo);
  await panel.getByTestId('topic-input').fill('Rust <b>only</b>');
  await panel.getByTestId('topic-save').click();
  for (const page of [mo, bob]) {
    await expect(page.getByTestId('room-topic')).toHaveText('Rust <b>only</b>');
    await expect(page.getByTestId('room-topic').locator('b')).toHaveCount(0);
  }
  await expect(notices(bob).filter({ hasText: exactly('Mo set the topic: Rust <b>only</b>') })).toHaveCount(1);

  // Slow mode: both see the badge; after a message Bob waits, counting down.
  await panel.getByTestId('slow-select').selectOption({ label: '10 s' });
  for (const page of [mo, bob]) {
    await expect(page.getByTestId('slow-badge')).toHaveText('Slow mode: 10 s');
  }
  await expect(notices(bob).filter({ hasText: exactly('Slow mode: one message every 10 s') })).toHaveCount(1);
  // (Bob's last message may still hold him back: wait for the countdown, if any, to end.)
  await expect(bob.getByTestId('send-button')).toBeEnabled({ timeout: 15_000 });
  await sendMessage(bob, 'one at a time');
  await expect(messageWithText(mo, 'one at a time')).toHaveCount(1);
  await expect(bob.getByTestId('composer-block')).toHaveText(/^You can send again in \d+ s$/);
  await expect(bob.getByTestId('send-button')).toBeDisabled();
  // Moderators are exempt.
  await sendMessage(mo, 'mods are not slowed');
  await sendMessage(mo, 'not at all');
  await expect(messageWithText(bob, 'not at all')).toHaveCount(1);
  await panel.getByTestId('slow-select').selectOption({ label: 'Off' });
  for (const page of [mo, bob]) {
    await expect(page.getByTestId('slow-badge')).toBeHidden();
  }
  await expect(bob.getByTestId('composer-block')).toBeHidden();

  // Lock: read-only for Bob, not for Mo.
  await panel.getByTestId('lock-toggle').click();
  for (const page of [mo, bob]) {
    await expect(page.getByTestId('locked-badge')).toBeVisible();
  }
  await expect(notices(bob).filter({ hasText: exactly('Mo locked the room') })).toHaveCount(1);
  await expect(bob.getByTestId('composer-block')).toHaveText('This room is read-only');
  await expect(bob.getByTestId('composer')).toBeDisabled();
  await sendMessage(mo, 'announcement');
  await expect(messageWithText(bob, 'announcement')).toHaveCount(1);
  await expect(panel.getByTestId('lock-toggle')).toHaveText('Unlock the room');
  await panel.getByTestId('lock-toggle').click();
  await expect(bob.getByTestId('locked-badge')).toBeHidden();
  await expect(bob.getByTestId('composer')).toBeEnabled();
  await panel.press('Escape');
  await expect(mo.getByTestId('moderate-panel')).toHaveCount(0);
  await expect(mo.getByTestId('moderate-button')).toBeFocused();

  // Clear: every message Bob posted in the last 15 minutes goes, for both; Esc closes the menu first.
  await sendMessage(bob, 'flood one');
  await expect(messageWithText(mo, 'flood one')).toHaveCount(1);
  const entry = member(mo, 'Bob');
  await entry.getByRole('button', { name: 'Moderate Bob' }).click();
  await expect(entry.getByTestId('member-menu')).toBeVisible();
  await mo.keyboard.press('Escape');
  await expect(entry.getByTestId('member-menu')).toHaveCount(0);
  await expect(entry.getByRole('button', { name: 'Moderate Bob' })).toBeFocused();
  form = await memberAction(mo, 'Bob', 'member-clear');
  await form.getByRole('radio', { name: 'Last 15 minutes' }).check();
  await form.getByTestId('mod-confirm').click();
  for (const page of [mo, bob]) {
    await expect(notices(page).filter({ hasText: /^Mo removed \d+ recent messages by Bob$/ })).toHaveCount(1);
    await expect(page.getByText('flood one')).toHaveCount(0);
    await expect(page.getByText('one at a time')).toHaveCount(0);
    await expect(messageWithText(page, 'announcement')).toHaveCount(1);
  }

  // Kick: Bob is told why and may rejoin.
  form = await memberAction(mo, 'Bob', 'member-kick');
  await form.getByTestId('mod-reason').fill('take a break');
  await form.getByTestId('mod-confirm').click();
  await expect(bob.getByTestId('removed-notice')).toContainText(
    'You were removed from the room by a moderator: take a break',
  );
  await expect(bob.getByTestId('connection-status')).toHaveAttribute('data-state', 'offline');
  await expect(bob.getByTestId('composer')).toBeDisabled();
  await expect(notices(mo).filter({ hasText: exactly('Bob was kicked by Mo: take a break') })).toHaveCount(1);
  await expect(member(mo, 'Bob')).toHaveCount(0);
  await bob.getByTestId('rejoin-button').click();
  await waitForChatOnline(bob);
  await expect(bob.getByTestId('removed-notice')).toHaveCount(0);
  await expect(member(mo, 'Bob')).toHaveCount(1);

  // Ban for an hour, with the address: Bob is told, and cannot come back, reloading or under a new name.
  form = await memberAction(mo, 'Bob', 'member-ban');
  await form.getByRole('radio', { name: '1 hour' }).check();
  await form.getByTestId('ban-address').check();
  await form.getByTestId('mod-reason').fill('spam again');
  await form.getByTestId('mod-confirm').click();
  // Until when, in Bob's own time and words (not the server's UTC sentence).
  const bannedUntil = /^You are banned from this room until \d\d:\d\d: spam again$/;
  await expect(bob.getByTestId('removed-text')).toHaveText(bannedUntil);
  await expect(bob.getByTestId('rejoin-button')).toHaveCount(0);
  await expect(notices(mo).filter({ hasText: /^Mo banned Bob for 1 hour: spam again$/ })).toHaveCount(1);

  await bob.reload();
  await waitForHydration(bob);
  await expect(bob.getByTestId('removed-notice')).toContainText('You are banned from this room');
  await expect(bob.getByTestId('connection-status')).toHaveAttribute('data-state', 'offline');

  await bob.getByTestId('leave-button').click();
  await expect(bob.getByTestId('join-form')).toBeVisible();
  await bob.getByTestId('name-input').fill('Robert');
  await bob.getByTestId('join-button').click();
  await expect(bob.getByTestId('room-error')).toHaveText(bannedUntil);
  await expect(bob.getByTestId('chat')).toHaveCount(0);
  await expect(member(mo, 'Robert')).toHaveCount(0);

  // The audit log lists what was done, newest first.
  panel = await moderatePanel(mo);
  await panel.getByTestId('audit-button').click();
  const rows = panel.getByTestId('audit-entry');
  await expect(rows.first()).toContainText('banned for 1 hour');
  await expect(rows.first()).toContainText('spam again');
  await expect(rows.filter({ hasText: 'kicked' })).toContainText('take a break');
  await expect(rows.filter({ hasText: 'removed a message' })).toContainText('spam');
  await expect(rows.filter({ hasText: 'set the topic: Rust <b>only</b>' })).toHaveCount(1);
});

test('a member has no audit log, and a made-up claim link is refused in words', async ({ browser }) => {
  const room = uniqueRoom('nomod');
  const { page: ann } = await newPage(browser, adminServer);
  await join(ann, room, 'Ann', 'fox');
  const status = await ann.evaluate(async (room) => (await fetch(`/api/rooms/${room}/audit`)).status, room);
  expect(status).toBe(403);
  // A claim with a made-up token is refused in words.
  await ann.goto(`/r/${room}?claim=not-a-real-token`);
  await waitForChatOnline(ann);
  await expect(ann.getByTestId('chat-error')).toBeVisible();
  await expect(ann.getByTestId('chat-error')).not.toHaveText('');
  await expect(ann.getByTestId('moderate-button')).toHaveCount(0);
  await expect(ann).toHaveURL(new RegExp(`/r/${room}$`));
});

test('the first member of a new room gets an owner link and claims it', async ({ browser }) => {
  const room = uniqueRoom('own');
  const { page: ann } = await newPage(browser, ownerServer);
  await join(ann, room, 'Ann', 'fox');
  const notice = ann.getByTestId('owner-notice');
  await expect(notice).toContainText('You created this room. Keep this owner link:');
  await expect(notice.getByTestId('owner-link')).toHaveText(new RegExp(`^${ownerServer.url}/r/${room}\\?claim=.+`));
  await expect(ann.getByTestId('moderate-button')).toHaveCount(0);

  // The second member gets no link.
  const { page: ben } = await newPage(browser, ownerServer);
  await join(ben, room, 'Ben', 'owl');
  await expect(ben.getByTestId('owner-notice')).toHaveCount(0);

  await notice.getByTestId('claim-now').click();
  await expect(notices(ben).filter({ hasText: exactly('Ann is now the owner') })).toHaveCount(1);
  await expect(ann.getByTestId('owner-notice')).toHaveCount(0);
  await expect(ann.getByTestId('moderate-button')).toBeVisible();
  // The owner's tools work: a topic for everyone.
  const panel = await moderatePanel(ann);
  await panel.getByTestId('topic-input').fill('Welcome');
  await panel.getByTestId('topic-input').press('Enter');
  await expect(ben.getByTestId('room-topic')).toHaveText('Welcome');
});
