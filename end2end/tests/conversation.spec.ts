import { expect, test, type Locator, type Page } from '@playwright/test';
import {
  openMessageMenu as openMenu,
  closeAllContexts,
  join,
  messageWithText,
  messages,
  sendMessage,
  twoUsers,
  uniqueRoom,
  waitForChatOnline,
} from './helpers';

test.afterEach(async ({ browser }) => {
  await closeAllContexts(browser);
});

/** The reaction button of `emoji` under `message`. */
function reaction(message: Locator, emoji: string): Locator {
  return message.locator(`[data-testid="reaction"][data-emoji="${emoji}"]`);
}

/** The message whose `data-id` is `id`. */
function messageById(page: Page, id: string): Locator {
  return page.getByTestId('messages').locator(`li[data-testid="message"][data-id="${id}"]`);
}

test('three typing at once are counted in each reader\'s language', async ({ browser }) => {
  const room = uniqueRoom('typ3');
  const typists = [];
  for (const [name, avatar] of [['Ann', 'fox'], ['Ben', 'owl'], ['Cy', 'cat']]) {
    const page = await (await browser.newContext()).newPage();
    await join(page, room, name, avatar);
    typists.push(page);
  }
  const dee = await (await browser.newContext({ locale: 'en-US' })).newPage();
  await join(dee, room, 'Dee', 'frog');
  const wen = await (await browser.newContext({ locale: 'zh-CN' })).newPage();
  await join(wen, room, 'Wen', 'panda');
  for (const page of typists) await page.getByTestId('composer').fill('typing at once');
  await expect(dee.getByTestId('typing')).toHaveText('3 people are typing…');
  await expect(wen.getByTestId('typing')).toHaveText('3 人正在输入…');
  // Each typist sees the two others by name.
  await expect(typists[0].getByTestId('typing')).toHaveText(/^(Ben and Cy|Cy and Ben) are typing…$/);
  // One sends: the count falls to the two others' names at once.
  await typists[2].getByTestId('composer').press('Enter');
  await expect(dee.getByTestId('typing')).toHaveText(/^(Ann and Ben|Ben and Ann) are typing…$/);
  await expect(wen.getByTestId('typing')).toHaveText(/^(Ann 和 Ben|Ben 和 Ann) 正在输入…$/);
});

test('typing shows in the other browsers, never to yourself, and goes away', async ({ browser }) => {
  const room = uniqueRoom('typ');
  const { pageA: ann, pageB: ben } = await twoUsers(browser, room, { a: ['Ann', 'fox'], b: ['Ben', 'owl'] });
  const cy = await (await browser.newContext()).newPage();
  await join(cy, room, 'Cy', 'cat');

  await ann.getByTestId('composer').fill('hel');
  await expect(ben.getByTestId('typing')).toHaveText('Ann is typing…');
  await expect(cy.getByTestId('typing')).toHaveText('Ann is typing…');
  await expect(ben.getByTestId('typing')).toHaveAttribute('aria-live', 'polite');
  await ben.getByTestId('composer').fill('me too');
  await expect(cy.getByTestId('typing')).toHaveText('Ann and Ben are typing…');
  // Nobody sees themselves typing.
  await expect(ann.getByTestId('typing')).toHaveText('Ben is typing…');
  await expect(ben.getByTestId('typing')).toHaveText('Ann is typing…');

  // Ann's message ends her typing at once.
  await ann.getByTestId('composer').fill('hello');
  await ann.getByTestId('composer').press('Enter');
  await expect(messageWithText(cy, 'hello')).toHaveCount(1);
  await expect(cy.getByTestId('typing')).toHaveText('Ben is typing…', { timeout: 1_000 });

  // Ben stops typing: he is forgotten 6 s after his last `typing`, not before.
  const heard = Date.now();
  await expect(cy.getByTestId('typing')).toHaveText('', { timeout: 12_000 });
  expect(Date.now() - heard).toBeGreaterThan(3_000);
  await expect(ann.getByTestId('typing')).toHaveText('');
});

test('edits and deletions are seen live and after a reload; only the author may make them', async ({ browser }) => {
  const room = uniqueRoom('edit');
  const { pageA: ann, pageB: ben } = await twoUsers(browser, room, { a: ['Ann', 'fox'], b: ['Ben', 'owl'] });
  await sendMessage(ann, 'first one');
  await sendMessage(ann, 'secnd one');
  await expect(messageWithText(ben, 'secnd one')).toHaveCount(1);
  const firstId = await messageWithText(ann, 'first one').getAttribute('data-id');
  expect(firstId).toBeTruthy();

  // Up in the empty composer edits Ann's last message; Enter saves.
  const composer = ann.getByTestId('composer');
  await composer.press('ArrowUp');
  await expect(ann.getByTestId('editing-bar')).toHaveText(/Editing message · Esc to cancel/);
  await expect(composer).toHaveValue('secnd one');
  await composer.fill('second one');
  await composer.press('Enter');
  await expect(ann.getByTestId('editing-bar')).toHaveCount(0);
  await expect(composer).toHaveValue('');
  const edited = messageWithText(ben, 'second one');
  await expect(edited).toHaveCount(1);
  await expect(edited.getByTestId('message-edited')).toHaveAttribute('title', /^Edited at \d\d:\d\d$/);
  await expect(messageWithText(ben, 'secnd one')).toHaveCount(0);

  // Edit from the menu, then Esc cancels it and gives the draft back.
  await composer.fill('a draft');
  await (await openMenu(messageWithText(ann, 'first one'))).getByTestId('menu-edit').click();
  await expect(composer).toHaveValue('first one');
  await composer.press('Escape');
  await expect(ann.getByTestId('editing-bar')).toHaveCount(0);
  await expect(composer).toHaveValue('a draft');
  await composer.fill('');

  // Ben may reply and react to Ann's message, not edit or delete it; Esc closes his menu.
  const bensMenu = await openMenu(messageWithText(ben, 'first one'));
  await expect(bensMenu.getByTestId('menu-reply')).toBeVisible();
  await expect(bensMenu.getByTestId('menu-react')).toBeVisible();
  await expect(bensMenu.getByTestId('menu-edit')).toHaveCount(0);
  await expect(bensMenu.getByTestId('menu-delete')).toHaveCount(0);
  await ben.keyboard.press('Escape');
  await expect(bensMenu).toHaveCount(0);

  // Delete asks first; Cancel keeps the message.
  let menu = await openMenu(messageWithText(ann, 'first one'));
  await menu.getByTestId('menu-delete').click();
  await menu.getByTestId('confirm-delete-cancel').click();
  await expect(menu).toHaveCount(0);
  await expect(messageWithText(ben, 'first one')).toHaveCount(1);
  menu = await openMenu(messageWithText(ann, 'first one'));
  await menu.getByTestId('menu-delete').click();
  await expect(menu.getByTestId('confirm-delete')).toBeVisible();
  await menu.getByTestId('confirm-delete-button').click();

  for (const page of [ann, ben]) {
    const gone = messageById(page, firstId!);
    await expect(gone.getByTestId('message-deleted')).toHaveText('message deleted');
    await expect(gone.getByTestId('message-text')).toHaveCount(0);
    await expect(gone.getByTestId('message-menu-button')).toHaveCount(0);
  }
  await expect(messageWithText(ben, 'first one')).toHaveCount(0);

  // After a reload the server's history has the newest state.
  await ben.reload();
  await waitForChatOnline(ben);
  await expect(messageById(ben, firstId!).getByTestId('message-deleted')).toHaveText('message deleted');
  await expect(messageWithText(ben, 'first one')).toHaveCount(0);
  await expect(messageWithText(ben, 'second one').getByTestId('message-edited')).toBeVisible();
  await expect(ben.getByText('secnd one')).toHaveCount(0);
});

test('reactions count every member, toggle off, and name who reacted', async ({ browser }) => {
  const room = uniqueRoom('react');
  const { pageA: ann, pageB: ben } = await twoUsers(browser, room, { a: ['Ann', 'fox'], b: ['Ben', 'owl'] });
  await sendMessage(ann, 'react to me');
  const atAnn = messageWithText(ann, 'react to me');
  const atBen = messageWithText(ben, 'react to me');
  await expect(atBen).toHaveCount(1);

  const menu = await openMenu(atAnn);
  await menu.getByTestId('menu-react').click();
  await menu.locator('[data-testid="pick-emoji"][data-emoji="👍"]').click();
  await expect(reaction(atBen, '👍')).toHaveText(/👍\s*1/);
  await expect(reaction(atBen, '👍')).toHaveAttribute('aria-pressed', 'false');
  await expect(reaction(atAnn, '👍')).toHaveAttribute('aria-pressed', 'true');

  // Ben clicks the same emoji: two, at both sides, naming both.
  await reaction(atBen, '👍').click();
  for (const m of [atAnn, atBen]) {
    await expect(reaction(m, '👍')).toHaveText(/👍\s*2/);
    await expect(reaction(m, '👍')).toHaveAttribute('aria-label', '👍 2: Ann, Ben');
    await expect(reaction(m, '👍')).toHaveAttribute('title', '👍 2: Ann, Ben');
  }
  await expect(reaction(atBen, '👍')).toHaveAttribute('aria-pressed', 'true');
  await expect(ben.getByRole('button', { name: '👍 2: Ann, Ben' })).toBeVisible();

  // Ann takes hers back.
  await reaction(atAnn, '👍').click();
  for (const m of [atAnn, atBen]) {
    await expect(reaction(m, '👍')).toHaveText(/👍\s*1/);
    await expect(reaction(m, '👍')).toHaveAttribute('aria-label', '👍 1: Ben');
  }
  await expect(reaction(atAnn, '👍')).toHaveAttribute('aria-pressed', 'false');

  // Any one emoji may be typed; anything else is explained.
  const bensMenu = await openMenu(atBen);
  await bensMenu.getByTestId('menu-react').click();
  await bensMenu.getByTestId('custom-emoji').fill('ok');
  await bensMenu.getByTestId('custom-emoji-add').click();
  await expect(bensMenu.getByTestId('emoji-error')).toHaveText('Enter one emoji');
  await bensMenu.getByTestId('custom-emoji').fill('🦀');
  await bensMenu.getByTestId('custom-emoji-add').click();
  await expect(reaction(atAnn, '🦀')).toHaveAttribute('aria-label', '🦀 1: Ben');

  // Ben takes his back too: the 👍 is gone; after a reload the 🦀 is still there.
  await reaction(atBen, '👍').click();
  await expect(reaction(atAnn, '👍')).toHaveCount(0);
  await ann.reload();
  await waitForChatOnline(ann);
  await expect(reaction(messageWithText(ann, 'react to me'), '🦀')).toHaveAttribute('aria-label', '🦀 1: Ben');
});

test("a reply's quote shows its original, loading older history down to it", async ({ browser }) => {
  test.setTimeout(90_000);
  const room = uniqueRoom('reply');
  const { pageA: ann, pageB: ben } = await twoUsers(browser, room, { a: ['Ann', 'fox'], b: ['Ben', 'owl'] });
  await sendMessage(ann, 'the original\nsecond line');
  const original = messages(ben).filter({ hasText: 'the original' });
  await expect(original).toHaveCount(1);
  const originalId = await original.getAttribute('data-id');

  // More than one page (50) of messages after it, posted over a socket of Ann's session.
  const posted = await ann.evaluate(async ({ room, count }) => {
    const ws = new WebSocket(`ws://${location.host}/ws/${room}`);
    const frames: any[] = [];
    let wake = () => {};
    ws.onmessage = (e) => {
      frames.push(JSON.parse(e.data));
      wake();
    };
    const until = async (done: () => boolean) => {
      while (!done()) await new Promise<void>((r) => (wake = r));
    };
    await new Promise((r) => (ws.onopen = r));
    ws.send(JSON.stringify({ type: 'join' }));
    await until(() => frames.some((f) => f.type === 'welcome'));
    const confirmed = (i: number) => frames.some((f) => f.type === 'message' && f.client_id === `fill-${i}`);
    for (let i = 0; i < count; i++) {
      ws.send(JSON.stringify({ type: 'send', client_id: `fill-${i}`, text: `filler ${i}` }));
      // One at a time, each after the previous one's confirmation, and under the rate limit (10/s).
      await until(() => confirmed(i));
      await new Promise((r) => setTimeout(r, 110));
    }
    ws.close();
    return count;
  }, { room, count: 55 });
  expect(posted).toBe(55);
  await expect(messageWithText(ben, 'filler 54')).toHaveCount(1);

  // Ben replies to the original from its menu.
  const menu = await openMenu(original);
  await menu.getByTestId('menu-reply').click();
  await expect(ben.getByTestId('replying-bar')).toHaveText(/Replying to Ann: the original/);
  await expect(ben.getByTestId('replying-bar')).not.toHaveText(/second line/);
  await ben.getByTestId('composer').fill('my answer');
  await ben.getByTestId('composer').press('Enter');
  await expect(ben.getByTestId('replying-bar')).toHaveCount(0);
  const reply = messageWithText(ann, 'my answer');
  await expect(reply.getByTestId('quote')).toHaveText(/Ann\s+the original/);

  // After a reload the original is older than the first page.
  await ann.reload();
  await waitForChatOnline(ann);
  await expect(messageWithText(ann, 'my answer')).toHaveCount(1);
  await expect(messageById(ann, originalId!)).toHaveCount(0);
  await messageWithText(ann, 'my answer').getByTestId('quote').click();
  const shown = messageById(ann, originalId!);
  await expect(shown).toBeInViewport();
  await expect(shown).toHaveClass(/highlight/);
  await expect(shown.getByTestId('message-text')).toHaveText(/the original\s+second line/);
  await expect(messages(ann).first()).toHaveAttribute('data-id', originalId!);

  // Once the original is deleted, its replies say so.
  const menu2 = await openMenu(shown);
  await menu2.getByTestId('menu-delete').click();
  await menu2.getByTestId('confirm-delete-button').click();
  for (const page of [ann, ben]) {
    await expect(messageWithText(page, 'my answer').getByTestId('quote')).toHaveText('original message deleted');
  }
});

test('a reaction made offline is sent once after the reconnect, which also brings the edits missed', async ({ browser }) => {
  const room = uniqueRoom('offc');
  const { ctxB, pageA: ann, pageB: ben } = await twoUsers(browser, room, { a: ['Ann', 'fox'], b: ['Ben', 'owl'] });
  await sendMessage(ann, 'while away');
  await expect(messageWithText(ben, 'while away')).toHaveCount(1);

  await ctxB.setOffline(true);
  await expect(ben.getByTestId('connection-status')).toHaveAttribute('data-state', 'reconnecting');
  const menu = await openMenu(messageWithText(ben, 'while away'));
  await menu.getByTestId('menu-react').click();
  await menu.locator('[data-testid="pick-emoji"][data-emoji="🎉"]').click();
  // Meanwhile Ann edits her message.
  await ann.getByTestId('composer').press('ArrowUp');
  await ann.getByTestId('composer').fill('while you were away');
  await ann.getByTestId('composer').press('Enter');
  await expect(messageWithText(ann, 'while you were away')).toHaveCount(1);

  await ctxB.setOffline(false);
  await expect(ben.getByTestId('connection-status')).toHaveAttribute('data-state', 'online');
  for (const page of [ann, ben]) {
    const m = messageWithText(page, 'while you were away');
    await expect(reaction(m, '🎉')).toHaveAttribute('aria-label', '🎉 1: Ben');
    await expect(m.getByTestId('message-edited')).toBeVisible();
  }
  await expect(reaction(messageWithText(ben, 'while you were away'), '🎉')).toHaveAttribute('aria-pressed', 'true');
  // Still once when the room moves on.
  await sendMessage(ann, 'later');
  await expect(messageWithText(ben, 'later')).toHaveCount(1);
  await expect(reaction(messageWithText(ann, 'while you were away'), '🎉')).toHaveText(/🎉\s*1/);
});
