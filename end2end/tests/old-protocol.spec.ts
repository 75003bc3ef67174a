import { expect, test, type Page } from '@playwright/test';
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as path from 'path';
import {
  avatarSrc,
  closeAllContexts,
  join,
  member,
  messageWithText,
  sendMessage,
} from './helpers';

/**
 * An old PHP/Swoole chat page (a stand-in written for these tests, fixtures/old-chat.html) on
 * a site of its own chats with the new UI in the lobby, which old clients join.
 */

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'old-chat.html');

/** The old page's own site: another origin (a port of its own), as the old PHP site was. */
let oldSite: http.Server;
let oldOrigin = '';

test.beforeAll(async () => {
  oldSite = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(fs.readFileSync(FIXTURE));
  });
  await new Promise<void>((resolve) => oldSite.listen(0, '127.0.0.1', resolve));
  oldOrigin = `http://127.0.0.1:${(oldSite.address() as AddressInfo).port}`;
});

test.afterAll(async () => {
  await new Promise((resolve) => oldSite.close(resolve));
});

test.afterEach(async ({ browser }) => {
  await closeAllContexts(browser);
});

/** Opens the old page and enters the chat as `name` with `avatar`. */
async function openOldPage(page: Page, server: string, name: string, avatar: string): Promise<void> {
  await page.goto(`${oldOrigin}/old-chat.html?server=${server}`);
  await page.fill('#username', name);
  await page.fill('#avatar', avatar);
  await page.click('#enter');
  await expect(page.locator('body')).toHaveAttribute('data-state', 'open');
}

test('an old-protocol page and the new UI chat in the same room', async ({ browser, baseURL }) => {
  const server = new URL(baseURL!).host;
  const stamp = Date.now().toString(36).slice(-5);
  const ada = `Ada ${stamp}`;
  const tom = `Tom ${stamp}`;

  const ctxNew = await browser.newContext();
  const fresh = await ctxNew.newPage();
  await join(fresh, 'lobby', ada, 'cat');

  const ctxOld = await browser.newContext();
  const old = await ctxOld.newPage();
  const dialogs: string[] = [];
  old.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  // One of the server's own avatars, by URL: the new UI shows it as that avatar.
  await openOldPage(old, server, tom, `${baseURL}/avatars/owl.svg`);

  // Presence both ways.
  await expect(member(fresh, tom)).toHaveCount(1);
  await expect(member(fresh, tom).getByTestId('member-avatar')).toHaveAttribute('src', avatarSrc('owl'));
  const adaOnline = old.locator('#online .member', { hasText: ada });
  await expect(adaOnline).toHaveCount(1);
  await expect(adaOnline.locator('img')).toHaveAttribute('src', `${baseURL}/avatars/cat.svg`);

  // New → old, with markup that the old page would run if it were not escaped.
  const attack = '<img src=x onerror="alert(document.domain)">';
  await sendMessage(fresh, attack);
  await sendMessage(fresh, 'hello, old friend');
  const said = old.locator('#log .msg', { hasText: 'hello, old friend' });
  await expect(said).toHaveCount(1);
  await expect(said.locator('.who')).toHaveText(ada);
  await expect(said.locator('.time')).toHaveText(/^\d\d:\d\d$/);
  const literal = old.locator('#log .msg .data', { hasText: attack });
  await expect(literal).toHaveCount(1);
  expect(await literal.evaluate((el) => el.textContent)).toBe(attack);
  await expect(old.locator('#log img[src="x"]')).toHaveCount(0);

  // Old → new.
  await old.fill('#text', 'hi from the old page');
  await old.click('#send');
  const got = messageWithText(fresh, 'hi from the old page');
  await expect(got).toHaveCount(1);
  await expect(got.getByTestId('message-name')).toHaveText(tom);
  await expect(got.getByTestId('message-avatar')).toHaveAttribute('src', avatarSrc('owl'));

  // The old page leaves: the new UI sees it go; the new UI leaves: the old page sees it go.
  await ctxOld.close();
  await expect(member(fresh, tom)).toHaveCount(0);

  const again = await (await browser.newContext()).newPage();
  again.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  await openOldPage(again, server, tom, 'https://img.invalid/tom.png');
  await expect(member(fresh, tom).getByTestId('member-avatar')).toHaveAttribute(
    'src',
    avatarSrc('fox'),
  ); // a foreign image URL is shown as the default avatar
  await expect(again.locator('#online .member', { hasText: ada })).toHaveCount(1);
  await ctxNew.close();
  await expect(again.locator('#online .member', { hasText: ada })).toHaveCount(0, { timeout: 15_000 });
  expect(dialogs).toEqual([]);
});
