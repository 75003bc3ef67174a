import { expect, type Browser, type BrowserContext, type Locator, type Page } from '@playwright/test';

/** Room names the app accepts: 1–32 characters of `a-z 0-9 -`. */
export const ROOM_NAME_RE = /^[a-z0-9-]{1,32}$/;

let roomCounter = 0;

/**
 * A fresh room name, unique per call (and very likely per run), matching
 * `[a-z0-9-]{1,32}`, e.g. `t-lq3k9x2a-1-4fz8q`.
 */
export function uniqueRoom(prefix = 't'): string {
  const cleanPrefix = prefix.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 8) || 't';
  roomCounter += 1;
  const stamp = Date.now().toString(36);
  const random = Math.random().toString(36).slice(2, 8);
  const room = `${cleanPrefix}-${stamp}-${roomCounter.toString(36)}-${random}`.slice(0, 32);
  if (!ROOM_NAME_RE.test(room)) {
    throw new Error(`uniqueRoom produced an invalid room name: ${room}`);
  }
  return room;
}

/** Go to `/r/<room>` and wait until the WASM client has hydrated the page. */
export async function openRoom(page: Page, room: string): Promise<void> {
  await page.goto(`/r/${room}`);
  await waitForHydration(page);
}

/** The app sets `<html data-hydrated="true">` once the WASM has hydrated. */
export async function waitForHydration(page: Page): Promise<void> {
  await page.waitForSelector('html[data-hydrated="true"]', { state: 'attached' });
}

/** The avatar radio button with the given id inside the join form's picker. */
export function avatarRadio(page: Page, avatarId: string): Locator {
  return page
    .getByTestId('avatar-picker')
    .locator(`input[type="radio"][data-avatar="${avatarId}"]`);
}

/** Open the room, fill the name, pick the avatar, join and wait until online. */
export async function join(page: Page, room: string, name: string, avatarId: string): Promise<void> {
  await openRoom(page, room);
  const form = page.getByTestId('join-form');
  await expect(form).toBeVisible();

  const nameInput = page.getByTestId('name-input');
  await nameInput.fill(name);
  await expect(nameInput).toHaveValue(name);

  const radio = avatarRadio(page, avatarId);
  await radio.click();
  await expect(radio).toBeChecked();

  await page.getByTestId('join-button').click();
  await waitForChatOnline(page);
}

/** Wait for the chat view with connection status `online`. */
export async function waitForChatOnline(page: Page): Promise<void> {
  await expect(page.getByTestId('chat')).toBeVisible();
  await expect(page.getByTestId('connection-status')).toHaveAttribute('data-state', 'online');
}

/** Fill the composer and press Enter to send. */
export async function sendMessage(page: Page, text: string): Promise<void> {
  const composer = page.getByTestId('composer');
  await composer.fill(text);
  await composer.press('Enter');
}

/** `li[data-testid="member"]` entries of the member list. */
export function members(page: Page): Locator {
  return page.getByTestId('member-list').getByTestId('member');
}

/** Escape a string for literal use inside a RegExp. */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A regex matching exactly `text` as an element's whole text (surrounding whitespace allowed). */
export function exactly(text: string): RegExp {
  return new RegExp('^\\s*' + escapeRegExp(text) + '\\s*$');
}

/** The member entry whose displayed name is exactly `name`. */
export function member(page: Page, name: string): Locator {
  return members(page).filter({
    has: page.getByTestId('member-name').filter({ hasText: exactly(name) }),
  });
}

/** `li[data-testid="message"]` entries (chat messages, not notices). */
export function messages(page: Page): Locator {
  return page.getByTestId('messages').getByTestId('message');
}

/** The message entries whose text is exactly `text`. */
export function messageWithText(page: Page, text: string): Locator {
  return messages(page).filter({
    has: page.getByTestId('message-text').filter({ hasText: exactly(text) }),
  });
}

/** `li[data-testid="notice"]` entries (join/leave notices). */
export function notices(page: Page): Locator {
  return page.getByTestId('messages').getByTestId('notice');
}

/** Matches an avatar image `src` of `/avatars/<id>.svg` (also if made absolute). */
export function avatarSrc(avatarId: string): RegExp {
  return new RegExp('(^|/)avatars/' + escapeRegExp(avatarId) + '\\.svg$');
}

/**
 * Safety net for `test.afterEach`: close every context a test opened with
 * `browser.newContext()` and did not close itself (e.g. because it failed early).
 */
export async function closeAllContexts(browser: Browser): Promise<void> {
  for (const context of browser.contexts()) {
    await context.close().catch(() => undefined);
  }
}

/** Two users, each in a browser context of their own, joined to `room`: Alice (fox) and Bob (owl) unless named. */
export async function twoUsers(
  browser: Browser,
  room: string,
  options: { a?: [string, string]; b?: [string, string]; baseURL?: string } = {},
): Promise<{ ctxA: BrowserContext; ctxB: BrowserContext; pageA: Page; pageB: Page }> {
  const contextOptions = options.baseURL ? { baseURL: options.baseURL } : {};
  const ctxA = await browser.newContext(contextOptions);
  const ctxB = await browser.newContext(contextOptions);
  const pageA = await ctxA.newPage();
  const pageB = await ctxB.newPage();
  const [nameA, avatarA] = options.a ?? ['Alice', 'fox'];
  const [nameB, avatarB] = options.b ?? ['Bob', 'owl'];
  await join(pageA, room, nameA, avatarA);
  await join(pageB, room, nameB, avatarB);
  return { ctxA, ctxB, pageA, pageB };
}

/** Opens the "⋯" menu of `message` (shown on hover) and waits for it. */
export async function openMessageMenu(message: Locator): Promise<Locator> {
  await message.hover();
  await message.getByTestId('message-menu-button').click();
  const menu = message.getByTestId('message-menu');
  await expect(menu).toBeVisible();
  return menu;
}
