import { expect, test, type Page } from '@playwright/test';
import { closeAllContexts, join, sendMessage, uniqueRoom, waitForHydration } from './helpers';

test.afterEach(async ({ browser }) => {
  await closeAllContexts(browser);
});

/** The current figure shown on the status page's chart `name`. */
function figure(page: Page, name: string) {
  return page.getByTestId(`status-${name}`).getByTestId('value');
}

async function number(page: Page, name: string): Promise<number> {
  return parseFloat((await figure(page, name).textContent()) ?? 'NaN');
}

test('the status page follows connections and messages live, without a reload', async ({ browser }) => {
  const adminCtx = await browser.newContext();
  const admin = await adminCtx.newPage();
  await admin.goto('/status');
  await waitForHydration(admin);
  await expect(admin.getByRole('heading', { name: 'Server status' })).toBeVisible();
  const before = await number(admin, 'connections');
  expect(before).not.toBeNaN();

  const chart = admin.getByTestId('status-connections').locator('polyline');
  const firstLine = await chart.getAttribute('points');
  // A new sample arrives every second, so the line changes on its own.
  await expect.poll(() => chart.getAttribute('points'), { timeout: 5_000 }).not.toBe(firstLine);

  const userCtx = await browser.newContext();
  const user = await userCtx.newPage();
  await join(user, uniqueRoom('status'), 'Sam', 'fox');
  await expect
    .poll(() => number(admin, 'connections'), { timeout: 10_000 })
    .toBe(before + 1);

  // The message shows up as a rate for the second it was sent in.
  await sendMessage(user, 'counted, not logged');
  await expect
    .poll(() => number(admin, 'messages'), { timeout: 10_000, intervals: [100] })
    .toBeGreaterThan(0);

  await userCtx.close();
  await expect
    .poll(() => number(admin, 'connections'), { timeout: 10_000 })
    .toBe(before);
  await adminCtx.close();
});
