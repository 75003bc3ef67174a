import { expect, test, type Locator, type Page } from '@playwright/test';
import { closeAllContexts, member, messageWithText, openRoom, uniqueRoom, waitForChatOnline } from './helpers';

/**
 * The whole visit by keyboard alone (no click, no mouse): join with a name and an avatar picked
 * with the arrow keys, send, open the message's menu and react, leave. Focus moves by Tab.
 */

test.afterEach(async ({ browser }) => {
  await closeAllContexts(browser);
});

/** Presses Tab (or Shift+Tab) until `target` has the focus; fails after `max` presses. */
async function tabTo(page: Page, target: Locator, { back = false, max = 40 } = {}): Promise<void> {
  for (let i = 0; i < max; i++) {
    if (await target.evaluate((el) => el === document.activeElement).catch(() => false)) return;
    await page.keyboard.press(back ? 'Shift+Tab' : 'Tab');
  }
  await expect(target).toBeFocused();
}

/** The focused element draws a visible outline (`:focus-visible`). */
async function expectVisibleFocus(target: Locator): Promise<void> {
  const outline = await target.evaluate((el) => {
    const style = getComputedStyle(el);
    return { style: style.outlineStyle, width: parseFloat(style.outlineWidth) };
  });
  expect(outline.style).not.toBe('none');
  expect(outline.width).toBeGreaterThanOrEqual(2);
}

test('join, pick an avatar with the arrows, send, react from the menu and leave, by keyboard only', async ({ page }) => {
  const room = uniqueRoom('keys');
  await openRoom(page, room);

  // The name.
  const name = page.getByTestId('name-input');
  await tabTo(page, name);
  await expectVisibleFocus(name);
  await page.keyboard.type('Kay');
  await expect(name).toHaveValue('Kay');

  // One Tab reaches the avatars (one tab stop), the arrows choose.
  await page.keyboard.press('Tab');
  const picker = page.getByTestId('avatar-picker');
  const checked = picker.locator('input[type="radio"]:checked');
  await expect(checked).toHaveCount(1);
  await expect(checked).toBeFocused();
  const first = await checked.getAttribute('value');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  await expect(checked).toBeFocused();
  const chosen = await checked.getAttribute('value');
  expect(chosen).not.toBe(first);
  await page.keyboard.press('ArrowLeft');
  await page.keyboard.press('ArrowRight');
  await expect(checked).toHaveAttribute('value', chosen ?? '');
  // The focused avatar shows its focus ring.
  const option = picker.locator('label.avatar-option:has(input:checked)');
  await expect.poll(() => option.evaluate((el) => getComputedStyle(el).outlineStyle)).not.toBe('none');
  // The next Tab leaves the group for the Join button.
  await page.keyboard.press('Tab');
  const joinButton = page.getByTestId('join-button');
  await expect(joinButton).toBeFocused();
  await page.keyboard.press('Enter');
  await waitForChatOnline(page);
  await expect(member(page, 'Kay').getByTestId('member-avatar')).toHaveAttribute('src', new RegExp(`/avatars/${chosen}\\.svg$`));

  // Send.
  const composer = page.getByTestId('composer');
  await tabTo(page, composer);
  await page.keyboard.type('typed without a mouse');
  await page.keyboard.press('Enter');
  const message = messageWithText(page, 'typed without a mouse');
  await expect(message).toHaveCount(1);
  await expect(composer).toHaveValue('');

  // Back to the message's "⋯" button, open its menu: the focus goes in, the arrows move.
  const more = message.getByTestId('message-menu-button');
  await tabTo(page, more, { back: true });
  await expectVisibleFocus(more);
  await page.keyboard.press('Enter');
  const menu = message.getByTestId('message-menu');
  await expect(menu.getByRole('menu')).toBeVisible();
  await expect(more).toHaveAttribute('aria-expanded', 'true');
  await expect(menu.getByTestId('menu-reply')).toBeFocused();
  await page.keyboard.press('ArrowDown');
  await expect(menu.getByTestId('menu-react')).toBeFocused();
  // Esc closes and gives the focus back to the button.
  await page.keyboard.press('Escape');
  await expect(menu).toHaveCount(0);
  await expect(more).toBeFocused();

  // React: the picker takes the focus; Tab to an emoji and press Enter.
  await page.keyboard.press('Enter');
  await expect(menu.getByTestId('menu-reply')).toBeFocused();
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  await expect(menu.getByTestId('emoji-picker')).toBeVisible();
  const party = menu.locator('[data-testid="pick-emoji"][data-emoji="🎉"]');
  await tabTo(page, party, { max: 8 });
  await page.keyboard.press('Enter');
  await expect(menu).toHaveCount(0);
  const reaction = message.locator('[data-testid="reaction"][data-emoji="🎉"]');
  await expect(reaction).toHaveAttribute('aria-pressed', 'true');
  await expect(reaction.locator('.count')).toHaveText('1');
  await expect(more).toBeFocused();

  // Leave.
  const leave = page.getByTestId('leave-button');
  await tabTo(page, leave, { back: true, max: 60 });
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('join-form')).toBeVisible();
  await expect(page.getByTestId('chat')).toHaveCount(0);
  await expect(messageWithText(page, 'typed without a mouse')).toHaveCount(1);
});
