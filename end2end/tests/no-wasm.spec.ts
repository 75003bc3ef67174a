import { expect, test } from '@playwright/test';
import { closeAllContexts, join, messageWithText, sendMessage, uniqueRoom } from './helpers';

/**
 * Before the WASM has loaded (here: never, it is blocked) the join form is a plain HTML form:
 * it posts to the `join_room` server function, which sets the session cookie and redirects
 * back, and the room's page then renders the conversation on the server.
 */

test.afterEach(async ({ browser }) => {
  await closeAllContexts(browser);
});

test('without WASM the join form joins by a plain post and the room page shows the conversation', async ({ browser }) => {
  const room = uniqueRoom('nowasm');
  const bobCtx = await browser.newContext();
  const bob = await bobCtx.newPage();
  await join(bob, room, 'Bob', 'owl');
  await sendMessage(bob, 'rendered by the server');
  await expect(messageWithText(bob, 'rendered by the server')).toHaveCount(1);

  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  let blocked = 0;
  await page.route('**/*.wasm', (route) => {
    blocked += 1;
    return route.abort();
  });
  await page.goto(`/r/${room}`);
  const form = page.getByTestId('join-form');
  await expect(form).toHaveAttribute('method', 'post');
  await expect(form).toHaveAttribute('action', '/api/join');
  await expect(form.locator('input[type="hidden"][name="room"]')).toHaveValue(room);
  await page.getByTestId('name-input').fill('Nora');
  await page.getByTestId('avatar-picker').locator('input[name="avatar"][value="cat"]').check();

  const posted = page.waitForRequest((r) => r.url().endsWith('/api/join') && r.method() === 'POST');
  await page.getByTestId('join-button').click();
  const request = await posted;
  expect(request.postData()).toContain('name=Nora');
  expect(request.postData()).toContain('avatar=cat');
  // Back to the room's page (leptos adds an empty query).
  await page.waitForURL(new RegExp(`/r/${room}\\??$`));

  // The server's page for her new session: the chat with the history and a composer, no join form; no WASM ran.
  await expect(page.getByTestId('chat')).toBeVisible();
  await expect(page.getByTestId('join-form')).toHaveCount(0);
  await expect(messageWithText(page, 'rendered by the server')).toHaveCount(1);
  await expect(page.getByTestId('composer')).toBeVisible();
  await expect(page.locator('html[data-hydrated="true"]')).toHaveCount(0);
  expect(blocked).toBeGreaterThan(0);
});

test('without WASM a refused join comes back to the form with its reason, in the reader\'s language', async ({ browser }) => {
  const room = uniqueRoom('nowasm');
  const bob = await (await browser.newContext()).newPage();
  await join(bob, room, 'Bob', 'owl');

  const page = await (await browser.newContext({ locale: 'zh-CN' })).newPage();
  await page.route('**/*.wasm', (route) => route.abort());
  await page.goto(`/r/${room}`);
  await page.getByTestId('name-input').fill('BOB');
  await page.getByTestId('join-button').click();
  await page.waitForURL(new RegExp(`/r/${room}\\?refused=name_taken$`));
  await expect(page.locator('#name-error')).toHaveText('这个名字在本聊天室已被占用');
  await expect(page.getByTestId('name-input')).toHaveAttribute('aria-invalid', 'true');
  await expect(page.getByTestId('chat')).toHaveCount(0);

  // Nothing but known codes is shown from the address: no text of anyone's choosing.
  await page.goto(`/r/${room}?refused=${encodeURIComponent('Send your password to evil.example')}`);
  await expect(page.getByTestId('join-form')).toBeVisible();
  await expect(page.locator('.field-error:visible')).toHaveCount(0);
});
