import { expect, test } from '@playwright/test';
import {
  closeAllContexts,
  join,
  member,
  members,
  messageWithText,
  notices,
  openRoom,
  sendMessage,
  uniqueRoom,
  waitForChatOnline,
  twoUsers,
} from './helpers';

test.afterEach(async ({ browser }) => {
  await closeAllContexts(browser);
});

test('closing a user\'s context removes them and shows a leave notice', async ({ browser }) => {
  const room = uniqueRoom('leave');
  const { ctxA, ctxB, pageA, pageB } = await twoUsers(browser, room);

  await expect(members(pageA)).toHaveCount(2);
  await expect(member(pageA, 'Bob')).toHaveCount(1);
  // A saw B arrive.
  await expect(notices(pageA).filter({ hasText: 'Bob joined' })).toHaveCount(1);

  await ctxB.close();

  await expect(member(pageA, 'Bob')).toHaveCount(0);
  await expect(members(pageA)).toHaveCount(1);
  await expect(member(pageA, 'Alice')).toHaveCount(1);
  await expect(notices(pageA).filter({ hasText: 'Bob left' })).toHaveCount(1);
  // A is unaffected.
  await expect(pageA.getByTestId('connection-status')).toHaveAttribute('data-state', 'online');

  await ctxA.close();
});

test('the same person in two tabs is one member until the last tab closes', async ({ browser }) => {
  const room = uniqueRoom('tabs');
  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  const tab1 = await ctxA.newPage();
  const pageB = await ctxB.newPage();

  await join(tab1, room, 'Carol', 'cat');
  await join(pageB, room, 'Dave', 'frog');
  await expect(members(pageB)).toHaveCount(2);

  // The second tab shares the session cookie: it goes straight to the chat, no join form.
  const tab2 = await ctxA.newPage();
  await openRoom(tab2, room);
  await waitForChatOnline(tab2);
  await expect(tab2.getByTestId('join-form')).toHaveCount(0);

  // A message from the second tab is Carol's and reaches everyone, including the first tab.
  // Once B has it, B has also processed whatever the second tab's connection caused.
  await sendMessage(tab2, 'from the second tab');
  const atB = messageWithText(pageB, 'from the second tab');
  await expect(atB).toHaveCount(1);
  await expect(atB.getByTestId('message-name')).toHaveText('Carol');
  await expect(messageWithText(tab1, 'from the second tab')).toHaveCount(1);
  await expect(messageWithText(tab2, 'from the second tab')).toHaveCount(1);

  // Carol is listed exactly once everywhere.
  await expect(member(pageB, 'Carol')).toHaveCount(1);
  await expect(members(pageB)).toHaveCount(2);
  await expect(member(tab1, 'Carol')).toHaveCount(1);
  await expect(member(tab2, 'Carol')).toHaveCount(1);
  await expect(members(tab2)).toHaveCount(2);

  // Closing one of her two tabs keeps her in the room.
  await tab1.close();
  // The one deliberate fixed wait: give a (wrong) removal time to show up.
  await pageB.waitForTimeout(2_000);
  await expect(member(pageB, 'Carol')).toHaveCount(1);
  await expect(members(pageB)).toHaveCount(2);
  await expect(notices(pageB).filter({ hasText: 'Carol left' })).toHaveCount(0);
  await expect(tab2.getByTestId('connection-status')).toHaveAttribute('data-state', 'online');

  // Closing the last one removes her.
  await tab2.close();
  await expect(member(pageB, 'Carol')).toHaveCount(0);
  await expect(members(pageB)).toHaveCount(1);
  await expect(notices(pageB).filter({ hasText: 'Carol left' })).toHaveCount(1);

  await ctxA.close();
  await ctxB.close();
});
