import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { ROOT } from '../support/daemon.js';
import { requireOrSkip } from '../support/prerequisites.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

/** Runs the demo script as `npm run demo -- …` does (the suite already runs inside a keyring session). */
async function demo(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: unknown; output: string; elapsed: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts', 'demo.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, DISPLAY: '', WAYLAND_DISPLAY: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  return { code, output, elapsed: Date.now() - started };
}

// Without Chromium the demo falls back to the dev form (the next test): this one is about the browser.
const noChromium = requireOrSkip(fs.existsSync(CHROMIUM), `demo: needs Chromium at ${CHROMIUM} (apt-get install chromium)`);

it.skipIf(noChromium)(
  'npm run demo -- --headless completes within its time box and shows expiry advancing',
  async () => {
    const { code, output, elapsed } = await demo(['--headless', '--duration', '20']);
    expect(code, output).toBe(0);
    expect(elapsed).toBeLessThan(60_000);
    expect(output).toMatch(/headless Chromium signed in as "demo-user"/);
    expect(output).not.toMatch(/posted the provider's dev login form/);
    expect(output).toMatch(/Signed in as demo-user/);
    expect(output).toMatch(/PROFILE\s+STATE/);
    expect(output).toMatch(/demo \*\s+active/);
    // The sample app's tokens: distinct tokens whose expiry moves forward.
    const seen = [...output.matchAll(/\[app\] token …(\S+) expires at (\S+ ?[AP]?M?)/g)].map((m) => ({ token: m[1]!, expires: m[2]! }));
    const tokens = [...new Set(seen.map((s) => s.token))];
    const expiries = [...new Set(seen.map((s) => s.expires))];
    expect(seen.length).toBeGreaterThanOrEqual(8);
    expect(tokens.length).toBeGreaterThanOrEqual(2);
    expect(expiries.length).toBe(tokens.length);
    expect(output).toMatch(/\[event\] tokenRefreshed/);
    expect(output).toMatch(/Done: daemon stopped, refresh token revoked/);
  },
  90_000,
);

it('without Chromium the headless demo signs in by posting the dev form', async () => {
  const { code, output } = await demo(['--headless', '--duration', '5'], { CHROMIUM_PATH: '/nonexistent/chromium' });
  expect(code, output).toBe(0);
  expect(output).toMatch(/posted the provider's dev login form/);
  expect(output).toMatch(/\[app\] token …/);
}, 60_000);

it.skipIf(noChromium)(
  'npm run demo -- --headless --device shows a device sign-in (RFC 8628): the CLI’s code, entered by headless Chromium',
  async () => {
    const { code, output } = await demo(['--headless', '--device', '--duration', '5']);
    expect(code, output).toBe(0);
    const userCode = /and enter the code\s+([A-Z]{4}-[A-Z]{4})/.exec(output)?.[1];
    expect(userCode, output).toBeDefined();
    expect(output).toContain(`headless Chromium entered ${userCode!} and signed in as "demo-user"`);
    expect(output).toMatch(/Signed in to demo as demo-user@example\.test/);
    expect(output).toMatch(/demo \*\s+active/);
    expect(output).toMatch(/\[app\] token …/);
    expect(output).toMatch(/Done: daemon stopped, refresh token revoked/);
  },
  90_000,
);
