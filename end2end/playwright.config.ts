import { defineConfig, devices } from '@playwright/test';

/**
 * End-to-end tests for the chatroom app.
 *
 * The release binary must already be built (`cargo leptos build --release --precompress --split`,
 * which embeds the site in it); Playwright runs a copy of it alone in a fresh temporary
 * folder (serve-copy.sh) on PORT and waits for `/healthz`. Chromium is the system one
 * (no `npx playwright install`).
 */
const PORT = process.env.E2E_PORT ?? '3137';

const launchOptions = {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
};

export default defineConfig({
  testDir: './tests',
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 30_000,
  expect: { timeout: 10_000 },
  forbidOnly: !!process.env.CI,
  reporter: [['list'], ['json', { outputFile: 'test-results/results.json' }]],
  use: {
    baseURL: `http://127.0.0.1:${PORT}`,
    launchOptions,
    trace: 'retain-on-failure',
  },
  projects: [
    {
      name: 'chromium',
      use: {
        ...devices['Desktop Chrome'],
        launchOptions,
      },
    },
  ],
  webServer: {
    // A fresh folder, so a fresh data/chat.db, per run; a short presence grace so that closed tabs leave quickly.
    // Every test browser comes from 127.0.0.1: the per-address limits are lifted; /status is public for its test.
    command:
      './serve-copy.sh --listen 127.0.0.1:' +
      PORT +
      ' --presence-grace-ms 1000 --metrics-public true' +
      ' --joins-per-minute 100000 --join-burst 100000 --max-reservations-per-ip 100000 --new-rooms-per-hour 100000',
    cwd: __dirname,
    env: {
      RUST_LOG: 'warn',
    },
    // SIGTERM lets the server drain and serve-copy.sh remove its folder.
    gracefulShutdown: { signal: 'SIGTERM', timeout: 15_000 },
    url: `http://127.0.0.1:${PORT}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'pipe',
    stderr: 'pipe',
  },
});
