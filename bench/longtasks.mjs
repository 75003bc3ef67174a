// The long tasks of a page's first load in the system Chromium at 4× CPU slowdown (as Lighthouse's
// mobile profile), measured rather than simulated: the chat view of a member and the join view of a
// visitor, with their blocking time (each task's time past 50 ms, summed). See BENCHMARKS.md.
//
// Usage: node bench/longtasks.mjs BASE_URL [RUNS]   (a running release server, e.g. on a fresh database)
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const require = createRequire(path.join(root, 'end2end', 'package.json'));
const { chromium } = require('playwright');

const [base, runsArg] = process.argv.slice(2);
const runs = Number(runsArg ?? 3);
const browser = await chromium.launch({
  executablePath: process.env.CHROME_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
const room = `longtasks-${Date.now().toString(36)}`;
const member = await browser.newContext();
const page = await member.newPage();
await page.goto(`${base}/r/${room}`);
await page.waitForSelector('html[data-hydrated="true"]', { state: 'attached' });
await page.getByTestId('name-input').fill('Pia');
await page.getByTestId('join-button').click();
await page.getByTestId('composer').waitFor();
for (const line of ['Morning, everyone!', 'Has anyone seen @Pia today?', 'The notes: https://example.com/notes']) {
  await page.getByTestId('composer').fill(line);
  await page.getByTestId('composer').press('Enter');
  await page.getByText(line).first().waitFor();
}
await page.close();

for (const view of ['chat', 'join']) {
  const lines = [];
  for (let i = 0; i < runs; i++) {
    const context = view === 'chat' ? member : await browser.newContext();
    const p = await context.newPage();
    const cdp = await context.newCDPSession(p);
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: 4 });
    await p.addInitScript(() => {
      window.__longTasks = [];
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) window.__longTasks.push(Math.round(e.duration));
      }).observe({ type: 'longtask', buffered: true });
    });
    await p.goto(`${base}/r/${room}`);
    await p.waitForSelector('html[data-hydrated="true"]', { state: 'attached', timeout: 60_000 });
    // Long tasks are reported after they end; the socket's first frames come within this.
    await p.waitForTimeout(2_500);
    const tasks = await p.evaluate(() => window.__longTasks);
    const blocking = tasks.reduce((sum, d) => sum + Math.max(0, d - 50), 0);
    lines.push(`${tasks.join(' + ') || 'none'} ms (blocking ${blocking} ms)`);
    await p.close();
    if (view !== 'chat') await context.close();
  }
  console.log(`${view}: ${lines.join(' | ')}`);
}
await browser.close();
