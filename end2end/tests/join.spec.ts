import { expect, test, type Locator, type Page } from '@playwright/test';
import {
  avatarRadio,
  avatarSrc,
  closeAllContexts,
  join,
  member,
  members,
  messageWithText,
  messages,
  openMessageMenu,
  openRoom,
  sendMessage,
  uniqueRoom,
  waitForHydration,
} from './helpers';

test.afterEach(async ({ browser }) => {
  await closeAllContexts(browser);
});

const SELECTED_CLASS = /(^|\s)selected(\s|$)/;

/** Put `value` into the name input, even past a `maxlength` the input may have. */
async function setName(page: Page, value: string): Promise<void> {
  const input = page.getByTestId('name-input');
  await input.fill(value);
  if ((await input.inputValue()) !== value) {
    // A maxlength cut it short: set it the way a script could, then let the app see an input event.
    await input.evaluate((el, v) => {
      const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')?.set;
      setter?.call(el, v);
      el.dispatchEvent(new Event('input', { bubbles: true }));
      el.dispatchEvent(new Event('change', { bubbles: true }));
    }, value);
  }
  await expect(input).toHaveValue(value);
}

/**
 * Open the room afresh (so no earlier error is on screen), try to join with `name`,
 * and check that a name error is shown and the user is still at the join form.
 */
async function expectNameRefused(page: Page, room: string, name: string): Promise<void> {
  await openRoom(page, room);
  await expect(page.getByTestId('join-form')).toBeVisible();
  await expect(page.getByTestId('name-error')).toBeHidden();

  await setName(page, name);
  await avatarRadio(page, 'owl').click();
  const joinButton = page.getByTestId('join-button');
  // A disabled join button for an invalid name is fine too, as long as the error is shown.
  if (await joinButton.isEnabled()) {
    await joinButton.click();
  }

  const error = page.getByTestId('name-error');
  await expect(error).toBeVisible();
  await expect(error).toHaveText(/\S/);
  await expect(page.getByTestId('join-form')).toBeVisible();
  await expect(page.getByTestId('chat')).toHaveCount(0);
}

test('a taken name (in any case) and invalid names are refused at the join form', async ({ browser }) => {
  const room = uniqueRoom('names');
  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  const pageA = await ctxA.newPage();
  const pageB = await ctxB.newPage();

  await join(pageA, room, 'Alice', 'fox');
  await expect(members(pageA)).toHaveCount(1);

  // "alice" is "Alice" in another case: taken.
  await openRoom(pageB, room);
  await expect(pageB.getByTestId('join-form')).toBeVisible();
  await setName(pageB, 'alice');
  await avatarRadio(pageB, 'owl').click();
  await pageB.getByTestId('join-button').click();

  const nameError = pageB.getByTestId('name-error');
  await expect(nameError).toBeVisible();
  await expect(nameError).toContainText(/taken/i);
  await expect(pageB.getByTestId('join-form')).toBeVisible();
  await expect(pageB.getByTestId('chat')).toHaveCount(0);
  await expect(members(pageA)).toHaveCount(1);
  await expect(member(pageA, 'Alice')).toHaveCount(1);

  // Empty, whitespace-only and too long (33 characters) names.
  await expectNameRefused(pageB, room, '');
  await expectNameRefused(pageB, room, '   ');
  await expectNameRefused(pageB, room, 'x'.repeat(33));

  // Nobody joined meanwhile.
  await expect(members(pageA)).toHaveCount(1);
  await expect(member(pageA, 'alice')).toHaveCount(0);
  await expect(pageA.getByTestId('connection-status')).toHaveAttribute('data-state', 'online');

  await ctxA.close();
  await ctxB.close();
});

test('avatar picker works with arrow keys; name and avatar are remembered', async ({ browser }) => {
  const room1 = uniqueRoom('remember');
  const room2 = uniqueRoom('remember');
  const ctx = await browser.newContext();
  const page = await ctx.newPage();

  await openRoom(page, room1);
  const picker = page.getByTestId('avatar-picker');
  await expect(picker).toHaveAttribute('role', 'radiogroup');
  const radios = picker.getByRole('radio');
  await expect(radios).toHaveCount(16);

  const ids = await radios.evaluateAll((els) => els.map((el) => el.getAttribute('data-avatar') ?? ''));
  for (const id of ['fox', 'owl', 'cat', 'frog', 'bear', 'panda', 'robot', 'alien', 'ghost', 'cactus', 'octopus', 'penguin']) {
    expect(ids).toContain(id);
  }
  expect(new Set(ids).size).toBe(16);
  // Each avatar is a real radio (`name=avatar`, posted by the form before hydration too), named once: the picture beside it is silent.
  for (const [i, id] of ids.entries()) {
    const radio = radios.nth(i);
    await expect(radio).toHaveJSProperty('tagName', 'INPUT');
    await expect(radio).toHaveAttribute('name', 'avatar');
    await expect(radio).toHaveAttribute('value', id);
    await expect(radio).toHaveAccessibleName(/\S/);
    const option = picker.locator('label.avatar-option').nth(i);
    await expect(option.locator('img')).toHaveAttribute('src', avatarSrc(id));
    await expect(option.locator('img')).toHaveAttribute('alt', '');
  }

  // Start from a selected avatar that has a next one (select the first if needed).
  const checkedStates = await radios.evaluateAll((els) => els.map((el) => (el as HTMLInputElement).checked));
  let start = checkedStates.indexOf(true);
  if (start < 0 || start === ids.length - 1) {
    await radios.nth(0).click();
    start = 0;
  }
  const current = radios.nth(start);
  const next = radios.nth(start + 1);
  await expect(current).toBeChecked();
  await expect(picker.locator('input[type="radio"]:checked')).toHaveCount(1);
  // Roving tabindex: only the selected radio is in the tab order.
  await expect(current).toHaveAttribute('tabindex', '0');
  await expect(picker.locator('input[type="radio"][tabindex="0"]')).toHaveCount(1);

  await current.focus();
  await expect(current).toBeFocused();
  await page.keyboard.press('ArrowRight');

  await expect(next).toBeChecked();
  await expect(next).toHaveClass(SELECTED_CLASS);
  await expect(next).toBeFocused();
  await expect(next).toHaveAttribute('tabindex', '0');
  await expect(current).not.toBeChecked();
  await expect(current).not.toHaveClass(SELECTED_CLASS);
  await expect(picker.locator('input[type="radio"]:checked')).toHaveCount(1);

  // ArrowLeft goes back, ArrowRight forward again.
  await page.keyboard.press('ArrowLeft');
  await expect(current).toBeChecked();
  await expect(current).toBeFocused();
  await page.keyboard.press('ArrowRight');
  await expect(next).toBeChecked();

  const chosen = ids[start + 1];
  const name = 'Erin';
  await page.getByTestId('name-input').fill(name);
  await page.getByTestId('join-button').click();
  await expect(page.getByTestId('chat')).toBeVisible();
  await expect(page.getByTestId('connection-status')).toHaveAttribute('data-state', 'online');
  await expect(member(page, name).getByTestId('member-avatar')).toHaveAttribute('src', avatarSrc(chosen));

  // Another room, same browser: the join form is prefilled with the same name and avatar.
  await openRoom(page, room2);
  await expect(page.getByTestId('join-form')).toBeVisible();
  await expect(page.getByTestId('name-input')).toHaveValue(name);
  await expect(avatarRadio(page, chosen)).toBeChecked();
  await expect(avatarRadio(page, chosen)).toHaveClass(SELECTED_CLASS);
  await expect(page.getByTestId('avatar-picker').locator('input[type="radio"]:checked')).toHaveCount(1);

  await ctx.close();
});

test('the room form opens another room as its own page, and refuses a name that is no room', async ({ browser }) => {
  const page = await (await browser.newContext()).newPage();
  const first = uniqueRoom('from');
  const second = uniqueRoom('to');
  await openRoom(page, first);
  await expect(page).toHaveTitle(`#${first} · Chat`);
  const input = page.getByRole('textbox', { name: 'Room' });

  await input.fill('no such room!');
  await page.getByRole('button', { name: 'Go', exact: true }).click();
  await expect(input).toHaveAttribute('aria-invalid', 'true');
  await expect(page).toHaveURL(new RegExp(`/r/${first}$`));

  await input.fill(second.toUpperCase());
  await page.getByRole('button', { name: 'Go', exact: true }).click();
  await expect(page).toHaveURL(new RegExp(`/r/${second}$`));
  await waitForHydration(page);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText(`#${second}`);
  await expect(page).toHaveTitle(`#${second} · Chat`);
  // The new room's page is live: joining it works.
  await join(page, second, 'Switcher', 'fox');
  await expect(member(page, 'Switcher')).toBeVisible();
});

test("a visitor's preview shows the conversation as it is, read-only: edits, reactions, deletions", async ({
  browser,
}) => {
  const room = uniqueRoom('peek');
  const ann = await (await browser.newContext()).newPage();
  await join(ann, room, 'Ann', 'fox');
  for (const text of ['hello there', 'typo hree', 'gone soon']) {
    await sendMessage(ann, text);
  }
  const composer = ann.getByTestId('composer');
  const gone = await messageWithText(ann, 'gone soon').getAttribute('data-id');
  const deleting = await openMessageMenu(messageWithText(ann, 'gone soon'));
  await deleting.getByTestId('menu-delete').click();
  await deleting.getByTestId('confirm-delete-button').click();
  await expect(messageWithText(ann, 'gone soon')).toHaveCount(0);
  await composer.press('ArrowUp');
  await expect(composer).toHaveValue('typo hree');
  await composer.fill('typo here');
  await composer.press('Enter');
  await expect(messageWithText(ann, 'typo here')).toHaveCount(1);
  const menu = await openMessageMenu(messageWithText(ann, 'hello there'));
  await menu.getByTestId('menu-react').click();
  await menu.locator('[data-testid="pick-emoji"][data-emoji="👍"]').click();
  await expect(messageWithText(ann, 'hello there').getByTestId('reaction')).toHaveCount(1);

  // India is 5 h 30 min off UTC: a time left in UTC would show other minutes.
  const visitor = await (await browser.newContext({ timezoneId: 'Asia/Kolkata' })).newPage();
  await openRoom(visitor, room);
  await expect(visitor.getByTestId('join-form')).toBeVisible();
  await expect(messages(visitor)).toHaveCount(3);
  await expect(messages(visitor).getByTestId('message-menu-button')).toHaveCount(0);
  await expect(messageWithText(visitor, 'typo here').getByTestId('message-edited')).toHaveText('(edited)');
  await expect(messageWithText(visitor, 'typo hree')).toHaveCount(0);
  const chip = messageWithText(visitor, 'hello there').locator('[data-testid="reaction"][data-emoji="👍"]');
  await expect(chip).toHaveText(/👍\s*1/);
  await expect(chip).toHaveAttribute('title', '👍 1: Ann');
  await expect(visitor.locator(`[data-testid="message"][data-id="${gone}"]`).getByTestId('message-deleted')).toHaveText(
    'message deleted',
  );
  const time = messageWithText(visitor, 'hello there').getByTestId('message-time');
  await expectKolkataTime(time);
  // Another language rewords it in place, times still the reader's; and back again.
  await visitor.getByTestId('language-select').selectOption('zh');
  await expect(messageWithText(visitor, 'typo here').getByTestId('message-edited')).toHaveText('（已编辑）');
  await expect(visitor.locator(`[data-testid="message"][data-id="${gone}"]`).getByTestId('message-deleted')).toHaveText(
    '消息已删除',
  );
  await expectKolkataTime(time);
  await visitor.getByTestId('language-select').selectOption('en');
  await expect(messageWithText(visitor, 'typo here').getByTestId('message-edited')).toHaveText('(edited)');
  await expect(messages(visitor)).toHaveCount(3);
  await expectKolkataTime(time);
});

/** The time shows its `datetime` as `HH:MM` in India's time zone (UTC+05:30). */
async function expectKolkataTime(time: Locator): Promise<void> {
  const datetime = (await time.getAttribute('datetime')) ?? '';
  const at = new Date(new Date(datetime).getTime() + 330 * 60_000);
  const pad = (n: number) => String(n).padStart(2, '0');
  await expect(time).toHaveText(`${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())}`);
}
