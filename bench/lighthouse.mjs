// Lighthouse 12 (mobile profile, simulated throttling) on the join view and the chat view of a running server,
// and the first load's bytes by kind: `scripts/lighthouse` runs it (see BENCHMARKS.md, "Page weight and Lighthouse").
//
// Usage: node bench/lighthouse.mjs BASE_URL RUNS OUT_DIR
// The chat view is a member's: Playwright joins `lighthouse` as "Lia" in the system Chromium, posts a few
// messages with a reply and a reaction, and Lighthouse loads the room with that session's cookie.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const require = createRequire(path.join(root, 'end2end', 'package.json'));
const { chromium } = require('playwright');

const [base, runsArg, outDir] = process.argv.slice(2);
const runs = Number(runsArg ?? 3);
const chrome = process.env.CHROME_PATH ?? '/usr/bin/chromium';
const lighthouse = path.join(root, 'scripts', 'node', 'node_modules', '.bin', 'lighthouse');
mkdirSync(outDir, { recursive: true });

/** Joins a room through the page as a person would, posts, and returns the session's Cookie header. */
async function memberCookie(room) {
  const browser = await chromium.launch({ executablePath: chrome, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage();
    await page.goto(`${base}/r/${room}`);
    await page.waitForSelector('html[data-hydrated="true"]', { state: 'attached' });
    await page.getByTestId('name-input').fill('Lia');
    await page.getByTestId('join-button').click();
    await page.getByTestId('composer').waitFor();
    const lines = [
      'Morning, everyone! Has anyone tried the new build?',
      'Yes: it loads much faster on my phone.',
      'The dark theme looks good too.',
    ];
    for (const line of lines) {
      await page.getByTestId('composer').fill(line);
      await page.getByTestId('composer').press('Enter');
      await page.getByText(line).first().waitFor();
    }
    const cookies = await page.context().cookies();
    return cookies.map((c) => `${c.name}=${c.value}`).join('; ');
  } finally {
    await browser.close();
  }
}

/** One Lighthouse run; returns its JSON report. */
function audit(url, name, i, cookie) {
  const out = path.join(outDir, `${name}.${i}.json`);
  const args = [
    url,
    '--output=json',
    `--output-path=${out}`,
    '--quiet',
    '--chrome-flags=--headless=new --no-sandbox --disable-gpu',
  ];
  if (cookie) {
    const headers = path.join(outDir, 'headers.json');
    writeFileSync(headers, JSON.stringify({ Cookie: cookie }));
    args.push(`--extra-headers=${headers}`);
  }
  execFileSync(lighthouse, args, { env: { ...process.env, CHROME_PATH: chrome }, stdio: 'inherit' });
  return JSON.parse(readFileSync(out, 'utf8'));
}

/** Transferred bytes of the first load by kind (HTML, CSS, JS, WASM, other). */
function weight(report) {
  const kinds = { html: 0, css: 0, js: 0, wasm: 0, other: 0 };
  for (const r of report.audits['network-requests'].details.items) {
    const url = r.url ?? '';
    const kind = url.endsWith('.wasm')
      ? 'wasm'
      : r.resourceType === 'Document'
        ? 'html'
        : r.resourceType === 'Stylesheet'
          ? 'css'
          : r.resourceType === 'Script'
            ? 'js'
            : 'other';
    kinds[kind] += r.transferSize ?? 0;
  }
  return kinds;
}

function summary(report) {
  const c = report.categories;
  const a = report.audits;
  return {
    performance: Math.round(c.performance.score * 100),
    accessibility: Math.round(c.accessibility.score * 100),
    bestPractices: Math.round(c['best-practices'].score * 100),
    seo: Math.round(c.seo.score * 100),
    cls: a['cumulative-layout-shift'].numericValue,
    lcpMs: a['largest-contentful-paint'].numericValue,
    fcpMs: a['first-contentful-paint'].numericValue,
    tbtMs: a['total-blocking-time'].numericValue,
    ttiMs: a.interactive?.numericValue ?? null,
    bytes: weight(report),
    failing: Object.values(a)
      .filter((x) => x.score !== null && x.score < 1 && ['binary', 'numeric'].includes(x.scoreDisplayMode))
      .map((x) => x.id),
  };
}

const views = [
  { name: 'join', url: `${base}/r/lighthouse`, cookie: null },
  { name: 'chat', url: `${base}/r/lighthouse`, cookie: await memberCookie('lighthouse') },
];
const results = {};
for (const view of views) {
  results[view.name] = [];
  for (let i = 1; i <= runs; i++) {
    const s = summary(audit(view.url, view.name, i, view.cookie));
    results[view.name].push(s);
    console.log(`${view.name} #${i}: ${JSON.stringify(s)}`);
  }
}
writeFileSync(path.join(outDir, 'summary.json'), JSON.stringify(results, null, 2));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const span = (xs) => `${Math.min(...xs)}–${Math.max(...xs)}`;
console.log('\nview | perf | a11y | best practices | SEO | CLS | LCP ms | TBT ms | TTI ms | HTML/CSS/JS/WASM bytes (median)');
for (const [name, rs] of Object.entries(results)) {
  const col = (k) => rs.map((r) => r[k]);
  const bytes = ['html', 'css', 'js', 'wasm'].map((k) => median(rs.map((r) => r.bytes[k]))).join(' / ');
  console.log(
    [
      name,
      span(col('performance')),
      span(col('accessibility')),
      span(col('bestPractices')),
      span(col('seo')),
      span(col('cls').map((x) => Number(x.toFixed(3)))),
      span(col('lcpMs').map(Math.round)),
      span(col('tbtMs').map(Math.round)),
      span(col('ttiMs').map((x) => Math.round(x ?? 0))),
      bytes,
    ].join(' | '),
  );
}
