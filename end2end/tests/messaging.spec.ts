import { expect, test, type Locator } from '@playwright/test';
import {
  avatarSrc,
  closeAllContexts,
  join,
  member,
  members,
  messageWithText,
  messages,
  sendMessage,
  uniqueRoom,
  twoUsers,
} from './helpers';

test.afterEach(async ({ browser }) => {
  await closeAllContexts(browser);
});

/** ISO-8601 in UTC, e.g. `2024-05-01T12:34:56Z` or `2024-05-01T12:34:56.789+00:00`. */
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]00:?00)$/;

/** Check the `time[data-testid="message-time"]` of a message: `HH:MM` local, `datetime` ISO UTC. */
async function expectMessageTime(message: Locator): Promise<void> {
  const time = message.getByTestId('message-time');
  await expect(time).toHaveText(/^\d{2}:\d{2}$/);
  await expect(time).toHaveAttribute('datetime', ISO_UTC);
  // The displayed HH:MM is the datetime in the browser's local time zone, 24h clock.
  const { shown, expected } = await time.evaluate((el) => {
    const d = new Date(el.getAttribute('datetime') ?? '');
    const pad = (n: number) => String(n).padStart(2, '0');
    return {
      shown: (el.textContent ?? '').trim(),
      expected: `${pad(d.getHours())}:${pad(d.getMinutes())}`,
    };
  });
  expect(shown).toBe(expected);
}

test('two users in a room see each other and exchange messages', async ({ browser }) => {
  const room = uniqueRoom('two');
  const { ctxA, ctxB, pageA, pageB } = await twoUsers(browser, room);

  // Both members are listed at both sides, each with the right avatar.
  for (const page of [pageA, pageB]) {
    await expect(members(page)).toHaveCount(2);
    const alice = member(page, 'Alice');
    const bob = member(page, 'Bob');
    await expect(alice).toHaveCount(1);
    await expect(bob).toHaveCount(1);
    await expect(alice.getByTestId('member-avatar')).toHaveAttribute('src', avatarSrc('fox'));
    await expect(bob.getByTestId('member-avatar')).toHaveAttribute('src', avatarSrc('owl'));
  }

  // A -> B
  await sendMessage(pageA, 'hello from A');
  const atB = messageWithText(pageB, 'hello from A');
  await expect(atB).toHaveCount(1);
  await expect(atB).toHaveAttribute('data-id', /.+/);
  await expect(atB.getByTestId('message-name')).toHaveText('Alice');
  await expect(atB.getByTestId('message-avatar')).toHaveAttribute('src', avatarSrc('fox'));
  await expectMessageTime(atB);

  // The sender sees its own message exactly once (server-confirmed, no optimistic duplicate).
  const atA = messageWithText(pageA, 'hello from A');
  await expect(atA).toHaveCount(1);
  await expect(atA.getByTestId('message-name')).toHaveText('Alice');
  await expect(atA.getByTestId('message-avatar')).toHaveAttribute('src', avatarSrc('fox'));
  await expectMessageTime(atA);
  await expect(pageA.getByTestId('composer')).toHaveValue('');

  // B -> A
  await sendMessage(pageB, 'hi back from B');
  const replyAtA = messageWithText(pageA, 'hi back from B');
  await expect(replyAtA).toHaveCount(1);
  await expect(replyAtA.getByTestId('message-name')).toHaveText('Bob');
  await expect(replyAtA.getByTestId('message-avatar')).toHaveAttribute('src', avatarSrc('owl'));
  await expectMessageTime(replyAtA);
  await expect(messageWithText(pageB, 'hi back from B')).toHaveCount(1);

  // By now everything A sent has long been echoed: still exactly one copy at each side,
  // and the two messages are in the same order everywhere.
  await expect(messageWithText(pageA, 'hello from A')).toHaveCount(1);
  await expect(messageWithText(pageB, 'hello from A')).toHaveCount(1);
  for (const page of [pageA, pageB]) {
    await expect(messages(page).getByTestId('message-text')).toHaveText(['hello from A', 'hi back from B']);
  }

  // Every message carries a distinct, non-empty data-id.
  await expect(messages(pageA)).toHaveCount(2);
  const ids = await messages(pageA).evaluateAll((els) => els.map((el) => el.getAttribute('data-id')));
  for (const id of ids) expect(id).toBeTruthy();
  expect(new Set(ids).size).toBe(ids.length);

  await ctxA.close();
  await ctxB.close();
});

test('rooms are separate: messages and members stay in their room', async ({ browser }) => {
  const room1 = uniqueRoom('sep');
  const room2 = uniqueRoom('sep');
  expect(room2).not.toBe(room1);

  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  const ctxC = await browser.newContext();
  const pageA = await ctxA.newPage();
  const pageB = await ctxB.newPage();
  const pageC = await ctxC.newPage();

  await join(pageA, room1, 'Alice', 'fox');
  await join(pageB, room1, 'Bob', 'owl');
  await join(pageC, room2, 'Carol', 'cat');

  await expect(members(pageA)).toHaveCount(2);
  await expect(members(pageB)).toHaveCount(2);

  // Room 2 only knows Carol.
  await expect(members(pageC)).toHaveCount(1);
  await expect(member(pageC, 'Carol')).toHaveCount(1);
  await expect(member(pageC, 'Alice')).toHaveCount(0);
  await expect(member(pageC, 'Bob')).toHaveCount(0);
  // ... and room 1 does not know Carol.
  await expect(member(pageA, 'Carol')).toHaveCount(0);

  await sendMessage(pageA, 'only for room one');
  await expect(messageWithText(pageB, 'only for room one')).toHaveCount(1);
  await expect(messageWithText(pageA, 'only for room one')).toHaveCount(1);

  // Carol's own message round-trips through the server after A's was broadcast,
  // so had A's message leaked into room 2 it would be there by now.
  await sendMessage(pageC, 'only for room two');
  await expect(messageWithText(pageC, 'only for room two')).toHaveCount(1);
  await expect(pageC.getByTestId('messages')).not.toContainText('only for room one');
  await expect(messages(pageC)).toHaveCount(1);

  // And the other way round: room 1 never sees room 2's message.
  await sendMessage(pageB, 'room one again');
  await expect(messageWithText(pageA, 'room one again')).toHaveCount(1);
  await expect(pageA.getByTestId('messages')).not.toContainText('only for room two');
  await expect(pageB.getByTestId('messages')).not.toContainText('only for room two');

  // Member lists are unchanged.
  await expect(members(pageC)).toHaveCount(1);
  await expect(members(pageA)).toHaveCount(2);
  await expect(member(pageA, 'Carol')).toHaveCount(0);

  await ctxA.close();
  await ctxB.close();
  await ctxC.close();
});
