import { expect, test } from '@playwright/test';
import { closeAllContexts, join, messageWithText, messages, uniqueRoom, twoUsers } from './helpers';

test.afterEach(async ({ browser }) => {
  await closeAllContexts(browser);
});

test('composer: Shift+Enter adds a line, Enter sends, blank messages are not sent', async ({ browser }) => {
  const room = uniqueRoom('compose');
  const { ctxA, ctxB, pageA, pageB } = await twoUsers(browser, room);

  const composer = pageA.getByTestId('composer');
  await expect(composer).toHaveJSProperty('tagName', 'TEXTAREA');

  // Shift+Enter inserts a newline and sends nothing.
  await composer.click();
  await composer.pressSequentially('first line');
  await composer.press('Shift+Enter');
  await composer.pressSequentially('second line');
  await expect(composer).toHaveValue('first line\nsecond line');
  await expect(messages(pageA)).toHaveCount(0);
  await expect(messages(pageB)).toHaveCount(0);

  // Enter sends both lines as one message; the composer is cleared.
  await composer.press('Enter');
  for (const page of [pageA, pageB]) {
    const message = messages(page).filter({ hasText: 'first line' });
    await expect(message).toHaveCount(1);
    const text = message.getByTestId('message-text');
    await expect(text).toContainText('second line');
    // Both lines are kept and shown on separate lines (white-space: pre-wrap, or <br>).
    await expect.poll(() => text.innerText()).toBe('first line\nsecond line');
  }
  await expect(composer).toHaveValue('');
  await expect(messages(pageA)).toHaveCount(1);

  // Whitespace only, via Enter and via the send button: nothing is added.
  await composer.fill('   ');
  await composer.press('Enter');
  await composer.fill(' \n\t ');
  await pageA.getByTestId('send-button').click();

  // The send button sends a real message; once it is back from the server, anything
  // sent before it would have arrived too.
  await composer.fill('sent with the button');
  await pageA.getByTestId('send-button').click();
  await expect(messageWithText(pageA, 'sent with the button')).toHaveCount(1);
  await expect(messageWithText(pageB, 'sent with the button')).toHaveCount(1);
  await expect(composer).toHaveValue('');

  for (const page of [pageA, pageB]) {
    await expect(messages(page)).toHaveCount(2);
    await expect(messages(page).getByTestId('message-text')).toHaveText([/first line\s*second line/, 'sent with the button']);
  }
  await expect(pageA.getByTestId('connection-status')).toHaveAttribute('data-state', 'online');

  await ctxA.close();
  await ctxB.close();
});
