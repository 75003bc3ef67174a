import { expect, test, type Page } from '@playwright/test';
import http from 'node:http';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { waitForHydration } from './helpers';

// The server under test is a copy of the release binary alone in an empty folder (serve-copy.sh):
// everything below comes from inside that one file.

const IMMUTABLE = 'public, max-age=31536000, immutable';

type Raw = { status: number; headers: http.IncomingHttpHeaders; body: Buffer };

/** A GET that sends exactly `headers` and returns the body as sent (not decompressed). */
function rawGet(url: string, headers: Record<string, string> = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers: { 'accept-encoding': 'identity', ...headers } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/** The page's stylesheet URL (from its <head>) and the script and WASM URLs it fetched to hydrate. */
async function assetUrls(page: Page): Promise<{ css: string; js: string; wasm: string }> {
  await waitForHydration(page);
  const css = await page.locator('link[rel="stylesheet"]#leptos').getAttribute('href');
  const fetched = await page.evaluate(() =>
    performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname),
  );
  const find = (name: string) => fetched.find((p) => p.endsWith(`/${name}`)) ?? '';
  return { css: css ?? '', js: find('chatroom.js'), wasm: find('chatroom.wasm') };
}

test('the page loads its CSS, JS and WASM from /pkg/<hash>/ and hydrates', async ({ page }) => {
  await page.goto('/');
  await waitForHydration(page);
  const { css, js, wasm } = await assetUrls(page);
  const hash = css.match(/^\/pkg\/([0-9a-f]{6,})\/chatroom\.css$/)?.[1];
  expect(hash, `stylesheet URL ${css}`).toBeTruthy();
  expect(js).toBe(`/pkg/${hash}/chatroom.js`);
  expect(wasm).toBe(`/pkg/${hash}/chatroom.wasm`);
  // The stylesheet really loaded: the page has its rules.
  const rules = await page.evaluate(
    (href) => [...document.styleSheets].find((s) => s.href?.endsWith(href))?.cssRules.length ?? 0,
    css,
  );
  expect(rules).toBeGreaterThan(0);
});

test('hashed files are served with their type, an ETag and a one-year immutable lifetime', async ({ page, baseURL }) => {
  await page.goto('/');
  const urls = await assetUrls(page);
  const expected: [string, string][] = [
    [urls.css, 'text/css'],
    [urls.js, 'text/javascript'],
    [urls.wasm, 'application/wasm'],
  ];
  for (const [url, type] of expected) {
    const res = await rawGet(baseURL + url);
    expect(res.status, url).toBe(200);
    expect(res.headers['content-type'], url).toBe(type);
    expect(res.headers['etag'], url).toMatch(/^"[0-9a-f]{16,}"$/);
    expect(res.headers['cache-control'], url).toBe(IMMUTABLE);
    expect(res.headers['content-encoding'], url).toBeUndefined();
    expect(res.body.length, url).toBeGreaterThan(0);
  }
  const wasm = await rawGet(baseURL + urls.wasm);
  expect(wasm.body.subarray(0, 4)).toEqual(Buffer.from([0, 0x61, 0x73, 0x6d])); // "\0asm"
});

test('the WASM comes brotli- or gzip-compressed when the browser allows it, and revalidates with 304', async ({
  page,
  baseURL,
}) => {
  await page.goto('/');
  const url = baseURL + (await assetUrls(page)).wasm;
  const plain = await rawGet(url);

  const br = await rawGet(url, { 'accept-encoding': 'br' });
  expect(br.status).toBe(200);
  expect(br.headers['content-encoding']).toBe('br');
  expect(br.headers['content-type']).toBe('application/wasm');
  expect(br.headers['vary']).toMatch(/accept-encoding/i);
  expect(br.headers['cache-control']).toBe(IMMUTABLE);
  expect(br.body.length).toBeLessThan(plain.body.length);
  expect(brotliDecompressSync(br.body).equals(plain.body)).toBe(true);

  const gz = await rawGet(url, { 'accept-encoding': 'gzip' });
  expect(gz.headers['content-encoding']).toBe('gzip');
  expect(gunzipSync(gz.body).equals(plain.body)).toBe(true);

  // Browsers that send both get brotli, the smaller.
  const both = await rawGet(url, { 'accept-encoding': 'gzip, deflate, br' });
  expect(both.headers['content-encoding']).toBe('br');

  const etag = br.headers['etag'] ?? '';
  expect(etag).not.toBe(plain.headers['etag']);
  const again = await rawGet(url, { 'accept-encoding': 'br', 'if-none-match': etag });
  expect(again.status).toBe(304);
  expect(again.body.length).toBe(0);
  expect(again.headers['etag']).toBe(etag);
  const changed = await rawGet(url, { 'accept-encoding': 'br', 'if-none-match': '"not-this-one"' });
  expect(changed.status).toBe(200);
});

test('an avatar image is served with its type and revalidated by ETag', async ({ baseURL }) => {
  const res = await rawGet(baseURL + '/avatars/fox.svg');
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toBe('image/svg+xml');
  expect(res.headers['cache-control']).toBe('no-cache');
  expect(res.body.toString()).toContain('<svg');
  const etag = res.headers['etag'] ?? '';
  expect(etag).toMatch(/^"[0-9a-f]{16,}"$/);
  const again = await rawGet(baseURL + '/avatars/fox.svg', { 'if-none-match': etag });
  expect(again.status).toBe(304);
});

test('a pkg URL with another hash, or a file that does not exist, is 404', async ({ page, baseURL }) => {
  await page.goto('/');
  const { js } = await assetUrls(page);
  const hash = js.split('/')[2] ?? '';
  const stale = hash.replace(/^./, (c) => (c === '0' ? '1' : '0'));
  expect(stale).not.toBe(hash);
  expect((await rawGet(`${baseURL}/pkg/${stale}/chatroom.js`)).status).toBe(404);

  const missing = await page.goto('/avatars/no-such-avatar.svg');
  expect(missing?.status()).toBe(404);
  await expect(page.getByRole('heading', { name: 'Page not found' })).toBeVisible();
});
