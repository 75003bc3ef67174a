import { devices, expect, test, type Browser, type Page, type TestInfo } from '@playwright/test';
import { avatarRadio, closeAllContexts, member, messageWithText, openRoom, uniqueRoom, waitForChatOnline } from './helpers';

/**
 * On a phone (Pixel 7: touch, 412×839, and a small 360×640 one): join and chat by tapping, the
 * member list as a drawer, nothing wider than the screen, 44 px touch targets, the composer's
 * placeholder fits; screenshots of the chat in English and Chinese kept as test artifacts; and on
 * slow 3G, the server's page is read and joined before the WASM has come.
 */

// The browser type is the project's (Chromium); the rest of the device is used.
const { defaultBrowserType: _browserType, ...pixel7 } = devices['Pixel 7'];
test.use(pixel7);

test.afterEach(async ({ browser }) => {
  await closeAllContexts(browser);
});

/** Joins `room` as `name` by tapping (the name is typed on the on-screen keyboard). */
async function tapJoin(page: Page, room: string, name: string, avatar: string): Promise<void> {
  await openRoom(page, room);
  await page.getByTestId('name-input').tap();
  await page.keyboard.type(name);
  await avatarRadio(page, avatar).tap();
  await expect(avatarRadio(page, avatar)).toBeChecked();
  await page.getByTestId('join-button').tap();
  await waitForChatOnline(page);
}

async function tapSend(page: Page, text: string): Promise<void> {
  await page.getByTestId('composer').tap();
  await page.keyboard.type(text);
  await page.getByTestId('send-button').tap();
  await expect(messageWithText(page, text)).toHaveCount(1);
}

/** No horizontal scroll, and no shown element reaches past the right edge of the screen. */
async function expectNothingWider(page: Page): Promise<void> {
  const { scrollWidth, innerWidth, wide } = await page.evaluate(() => {
    const width = window.innerWidth;
    const wide: string[] = [];
    for (const el of Array.from(document.body.querySelectorAll('*'))) {
      const box = el.getBoundingClientRect();
      if (box.width === 0 && box.height === 0) continue;
      // Text cut off on purpose by a clipping box (ellipsis, the sr-only pattern) is inside its box.
      if (el.closest('.sr-only')) continue;
      if (box.right > width + 0.5 || box.left < -0.5) {
        wide.push(`${el.tagName.toLowerCase()}.${el.className}: ${Math.round(box.left)}..${Math.round(box.right)}`);
      }
    }
    return { scrollWidth: document.documentElement.scrollWidth, innerWidth: width, wide };
  });
  expect(scrollWidth).toBeLessThanOrEqual(innerWidth);
  expect(wide).toEqual([]);
}

/** Every shown button, field and link (but links inside text) of `page` is at least 44×44 px. */
async function expectTouchTargets(page: Page, selector: string): Promise<void> {
  const small = await page.locator(selector).evaluateAll((els) =>
    els
      .filter((el) => el.checkVisibility())
      .map((el) => ({ el, box: el.getBoundingClientRect() }))
      .filter(({ box }) => box.width < 44 - 0.5 || box.height < 44 - 0.5)
      .map(({ el, box }) => `${el.getAttribute('data-testid') ?? el.outerHTML.slice(0, 60)}: ${box.width}×${box.height}`),
  );
  expect(small).toEqual([]);
}

/** The composer's placeholder fits its box: a copy of it, laid out as the field does, is no taller. */
async function expectPlaceholderFits(page: Page): Promise<void> {
  const { needed, room, text } = await page.getByTestId('composer').evaluate((el) => {
    const field = el as HTMLTextAreaElement;
    const style = getComputedStyle(field);
    const placeholder = getComputedStyle(field, '::placeholder');
    const probe = document.createElement('div');
    probe.textContent = field.placeholder;
    Object.assign(probe.style, {
      position: 'absolute',
      visibility: 'hidden',
      width: `${field.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight)}px`,
      fontFamily: style.fontFamily,
      fontSize: placeholder.fontSize,
      lineHeight: style.lineHeight,
      whiteSpace: 'pre-wrap',
      overflowWrap: 'break-word',
    });
    document.body.append(probe);
    const needed = probe.getBoundingClientRect().height;
    probe.remove();
    const room = field.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
    return { needed, room, text: field.placeholder };
  });
  expect(text.length).toBeGreaterThan(0);
  expect(needed).toBeLessThanOrEqual(room + 0.5);
}

async function attachChat(page: Page, testInfo: TestInfo, name: string): Promise<void> {
  // Kept in the test's output folder (test-results/) and attached to the report.
  const path = testInfo.outputPath(name);
  await page.screenshot({ path });
  await testInfo.attach(name, { path, contentType: 'image/png' });
}

async function phoneChat(browser: Browser, locale: string): Promise<{ page: Page; room: string }> {
  const ctx = await browser.newContext({ ...pixel7, locale });
  const page = await ctx.newPage();
  const room = uniqueRoom('phone');
  await tapJoin(page, room, 'Pia', 'panda');
  return { page, room };
}

test('join and chat by tapping; the members in a drawer; nothing wider than the screen; 44 px targets', async ({ browser }, testInfo) => {
  test.setTimeout(60_000);
  const { page, room } = await phoneChat(browser, 'en-US');
  const friendCtx = await browser.newContext({ ...pixel7 });
  const friend = await friendCtx.newPage();
  await tapJoin(friend, room, 'Fen', 'owl');
  await tapSend(page, 'Hello from a phone 👋');
  await tapSend(friend, '你好！Replying from another phone with a longer message that has to wrap over several lines on this screen');
  await expect(messageWithText(page, 'Hello from a phone 👋')).toHaveCount(1);

  // The conversation fills the screen; the member list waits in a closed drawer.
  const button = page.getByTestId('members-button');
  const drawer = page.getByTestId('members-drawer');
  await expect(button).toBeVisible();
  await expect(button).toHaveAttribute('aria-expanded', 'false');
  await expect(button).toHaveAttribute('aria-controls', 'members-drawer');
  await expect(drawer).toBeHidden();
  const conversation = await page.locator('.conversation').boundingBox();
  const viewport = page.viewportSize();
  expect(conversation?.width ?? 0).toBeGreaterThan((viewport?.width ?? 0) - 24);
  await expectNothingWider(page);
  await expectTouchTargets(page, 'header button, header input, .composer button, .composer textarea, .message .more, .reaction');
  await expectPlaceholderFits(page);
  await attachChat(page, testInfo, 'chat-en-US.png');

  // Open the drawer: the members, with the focus in it; its close button closes it.
  await button.tap();
  await expect(button).toHaveAttribute('aria-expanded', 'true');
  await expect(drawer).toBeVisible();
  await expect(member(page, 'Fen')).toBeVisible();
  await expect(page.getByTestId('members-close')).toBeFocused();
  await expectTouchTargets(page, '.members button');
  await expectNothingWider(page);
  // Modal: a dialog over an inert page, so focus and a screen reader stay in it.
  await expect(drawer).toHaveAttribute('role', 'dialog');
  await expect(drawer).toHaveAttribute('aria-modal', 'true');
  await expect(page.locator('.conversation')).toHaveAttribute('inert', '');
  await expect(page.locator('.topbar')).toHaveAttribute('inert', '');
  for (let i = 0; i < 6; i += 1) {
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.closest('#members-drawer') !== null)).toBe(true);
  }
  await page.getByTestId('members-close').tap();
  await expect(page.locator('.conversation')).not.toHaveAttribute('inert', '');
  await expect(drawer).not.toHaveAttribute('role', 'dialog');
  await expect(drawer).toBeHidden();
  await expect(button).toHaveAttribute('aria-expanded', 'false');
  await expect(button).toBeFocused();
  // Esc closes it too, and so does a tap beside it.
  await button.tap();
  await expect(drawer).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(drawer).toBeHidden();
  await button.tap();
  await expect(drawer).toBeVisible();
  await page.touchscreen.tap(20, (viewport?.height ?? 800) / 2);
  await expect(drawer).toBeHidden();
  await expect(button).toBeFocused();

  // The message menu works by touch (its button is always shown on touch screens).
  const mine = messageWithText(page, 'Hello from a phone 👋');
  await mine.getByTestId('message-menu-button').tap();
  const menu = mine.getByTestId('message-menu');
  await menu.getByTestId('menu-react').tap();
  await menu.locator('[data-testid="pick-emoji"][data-emoji="👍"]').tap();
  await expect(mine.locator('[data-testid="reaction"][data-emoji="👍"]')).toHaveAttribute('aria-pressed', 'true');
  await expectNothingWider(page);
});

test('the chat in Chinese on a phone, kept as a screenshot', async ({ browser }, testInfo) => {
  const { page } = await phoneChat(browser, 'zh-CN');
  await tapSend(page, '大家好，这是手机上的消息 🎉');
  await expectNothingWider(page);
  await expectPlaceholderFits(page);
  await attachChat(page, testInfo, 'chat-zh-CN.png');
});

test('at 360×640 the chat fits: no sideways scroll, the composer in view, the placeholder whole', async ({ browser }) => {
  const ctx = await browser.newContext({ ...pixel7, viewport: { width: 360, height: 640 }, screen: { width: 360, height: 640 } });
  const page = await ctx.newPage();
  const room = uniqueRoom('small');
  await openRoom(page, room);
  await expectNothingWider(page);
  await tapJoin(page, room, 'Sam', 'cat');
  for (const text of ['one', 'two', 'a rather long word: supercalifragilisticexpialidocious-and-then-some-more']) {
    await tapSend(page, text);
  }
  await expectNothingWider(page);
  await expectPlaceholderFits(page);
  // The composer and its send button are on screen, at the bottom.
  const send = await page.getByTestId('send-button').boundingBox();
  expect(send).not.toBeNull();
  expect((send?.y ?? 0) + (send?.height ?? 0)).toBeLessThanOrEqual(640);
  expect(send?.y ?? 0).toBeGreaterThan(640 / 2);
  await expectTouchTargets(page, 'header button, .composer button, .composer textarea');
});

/** How many rows the header's shown items take (an item starts a row below the bottom of the last). */
async function headerRows(page: Page): Promise<number> {
  return page.locator('.topbar').evaluate((bar) => {
    const boxes = [...bar.children]
      .map((el) => el.getBoundingClientRect())
      .filter((r) => r.width > 0 && r.height > 0)
      .sort((a, b) => a.top - b.top);
    let rows = 0;
    let bottom = -Infinity;
    for (const r of boxes) {
      if (r.top >= bottom - 1) {
        rows += 1;
        bottom = r.bottom;
      } else {
        bottom = Math.max(bottom, r.bottom);
      }
    }
    return rows;
  });
}

test('at 360×640 the header keeps to two rows in English and Chinese; a member finds the count on the members button', async ({
  browser,
}) => {
  for (const locale of ['en-US', 'zh-CN']) {
    const ctx = await browser.newContext({ ...pixel7, locale, viewport: { width: 360, height: 640 } });
    const page = await ctx.newPage();
    const room = uniqueRoom('rows');
    await openRoom(page, room);
    expect(await headerRows(page), `${locale}, visitor`).toBe(2);
    await tapJoin(page, room, 'Row', 'cat');
    expect(await headerRows(page), `${locale}, member`).toBe(2);
    await expect(page.getByTestId('online-count')).toBeHidden();
    const name = locale === 'en-US' ? 'Members, 1 person online' : '成员，1 人在线';
    await expect(page.getByRole('button', { name })).toBeVisible();
    await expectNothingWider(page);
    await ctx.close();
  }
});

test('installable: the manifest and its icons are served and linked', async ({ page, request }) => {
  await page.goto('/');
  await expect(page.locator('link[rel="manifest"]')).toHaveAttribute('href', '/manifest.webmanifest');
  await expect(page.locator('meta[name="theme-color"]')).toHaveAttribute('content', /^#[0-9a-f]{6}$/i);
  await expect(page.locator('meta[name="viewport"]')).toHaveAttribute('content', /interactive-widget=resizes-content/);
  const response = await request.get('/manifest.webmanifest');
  expect(response.status()).toBe(200);
  const manifest = (await response.json()) as {
    name: string;
    short_name: string;
    start_url: string;
    display: string;
    icons: { src: string; sizes: string; type: string; purpose?: string }[];
  };
  expect(manifest.name).toBeTruthy();
  expect(manifest.short_name).toBeTruthy();
  expect(manifest.start_url).toBe('/');
  expect(manifest.display).toBe('standalone');
  for (const size of ['192x192', '512x512']) {
    expect(manifest.icons.some((i) => i.sizes === size && i.type === 'image/png')).toBe(true);
  }
  expect(manifest.icons.some((i) => i.purpose === 'maskable')).toBe(true);
  for (const icon of manifest.icons) {
    const file = await request.get(icon.src);
    expect(file.status(), icon.src).toBe(200);
    expect(file.headers()['content-type']).toBe(icon.type);
  }
  // The page's policy lets the browser fetch it (manifest-src falls back to default-src 'self').
  const csp = (await page.request.get('/')).headers()['content-security-policy'] ?? '';
  expect(csp).toContain("default-src 'self'");
  expect(csp).not.toContain('manifest-src');
});

test('on slow 3G the page shows and joins before its WASM has come, then takes over', async ({ browser }) => {
  test.setTimeout(90_000);
  const room = uniqueRoom('slow3g');
  const friend = await (await browser.newContext({ ...pixel7 })).newPage();
  await tapJoin(friend, room, 'Fen', 'owl');
  await tapSend(friend, 'anyone on a slow line?');

  const context = await browser.newContext({ ...pixel7 });
  const page = await context.newPage();
  // Chrome DevTools' "Slow 3G": 400 ms round trips, 400 kbit/s down (the WASM alone takes ~10 s).
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 400,
    downloadThroughput: (400 * 1024) / 8,
    uploadThroughput: (400 * 1024) / 8,
  });
  await page.goto(`/r/${room}`, { waitUntil: 'commit' });
  // The server's page: the form and the conversation so far, while no WASM has run.
  await expect(page.getByTestId('join-form')).toBeVisible();
  await expect(messageWithText(page, 'anyone on a slow line?')).toHaveCount(1);
  await expect(page.locator('html[data-hydrated="true"]')).toHaveCount(0);
  // Joined by the plain form before hydration: the server renders the chat for the new session.
  await page.getByTestId('name-input').tap();
  await page.keyboard.type('Sol');
  await page.getByTestId('join-button').tap();
  await expect(page.getByTestId('chat')).toBeVisible({ timeout: 20_000 });
  await expect(page.locator('html[data-hydrated="true"]')).toHaveCount(0);
  // Then the WASM comes, hydrates the chat and connects: Sol is online and can talk.
  await expect(page.getByTestId('connection-status')).toHaveAttribute('data-state', 'online', { timeout: 60_000 });
  await expect(member(friend, 'Sol')).toHaveCount(1);
  await tapSend(page, 'made it on 3G');
  await expect(messageWithText(friend, 'made it on 3G')).toHaveCount(1);
});
