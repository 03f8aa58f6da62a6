/**
 * How the daemon starts the browser when it runs as a systemd user service: as a transient unit of its
 * own (`systemd-run --user`), so the browser inherits neither the service's no_new_privs and seccomp
 * filters nor its MemoryMax=/TasksMax= cgroup, and survives a restart of the service.
 *
 * No systemd user manager runs on the test machines, so a fake `systemd-run` first on PATH records its
 * argv and then does what the real one would: run the command after `--` (which is xdg-open, which
 * runs $BROWSER — the fake browser of the other end-to-end tests). The real systemd-run is checked to
 * accept the same options.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { systemBrowser, systemdRunCommand } from '../../daemon/browser.js';
import { createLogger } from '../../daemon/log.js';
import { FAKE_BROWSER, LAUNCHER_URL, waitForBrowserUrl } from '../support/browser-user.js';
import { idpProfile, startBroker } from '../support/broker.js';
import { runCli, tempDir } from '../support/daemon.js';
import { startTestIdp, type TestIdp } from '../support/idp.js';

const URL_OPENED = 'http://127.0.0.1:45678/start/aGVsbG8gd29ybGQgZnJvbSB0aGUgdGVzdA';
/** What systemd sets for a service of a user manager (systemd.exec(5), "Environment variables"). */
const USER_UNIT_ENV = { INVOCATION_ID: '0123456789abcdef0123456789abcdef', MANAGERPID: '4242' };

/** A temp dir with a fake systemd-run (exit `exitCode`; on 0 it runs the command after `--`). */
function fakeSystemdRun(exitCode = 0) {
  const dir = tempDir('tb-sdrun-');
  const bin = path.join(dir, 'bin');
  const calls = path.join(dir, 'systemd-run.argv');
  const browserLog = path.join(dir, 'browser.log');
  fs.mkdirSync(bin);
  fs.writeFileSync(
    path.join(bin, 'systemd-run'),
    `#!/bin/sh\nprintf '%s\\n' "$@" >> '${calls}'\nprintf '\\n' >> '${calls}'\n` +
      (exitCode === 0
        ? `while [ "$1" != "--" ]; do shift; done\nshift\n"$@" >/dev/null 2>&1 &\nexit 0\n`
        : `echo 'Failed to connect to bus: No such file or directory' >&2\nexit ${exitCode}\n`),
    { mode: 0o755 },
  );
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${process.env['PATH']}`, BROWSER: FAKE_BROWSER, TOKENBROKER_TEST_BROWSER_LOG: browserLog };
  delete env['INVOCATION_ID'];
  delete env['MANAGERPID'];
  /** The argv of each systemd-run call. */
  const recorded = (): string[][] =>
    fs.existsSync(calls)
      ? fs
          .readFileSync(calls, 'utf8')
          .split('\n\n')
          .filter((call) => call.trim() !== '')
          .map((call) => call.replace(/\n$/, '').split('\n'))
      : [];
  const browserUrls = () => (fs.existsSync(browserLog) ? fs.readFileSync(browserLog, 'utf8').split('\n').filter(Boolean) : []);
  return { env, bin, recorded, browserLog, browserUrls };
}

/** `open` (the fallback) starts xdg-open with this process's environment: give it the fake browser. */
function withProcessBrowser(fake: ReturnType<typeof fakeSystemdRun>): () => void {
  const saved = { BROWSER: process.env['BROWSER'], TOKENBROKER_TEST_BROWSER_LOG: process.env['TOKENBROKER_TEST_BROWSER_LOG'] };
  process.env['BROWSER'] = fake.env['BROWSER'];
  process.env['TOKENBROKER_TEST_BROWSER_LOG'] = fake.env['TOKENBROKER_TEST_BROWSER_LOG'];
  return () => {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
}

function capturedLogger() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  return { log: createLogger('trace', stream), text: () => text };
}

/** The installed xdg-open (package xdg-utils), which systemd-run is given by absolute path. */
const XDG_OPEN = spawnSync('sh', ['-c', 'command -v xdg-open'], { encoding: 'utf8' }).stdout.trim();

describe('opening the browser from a systemd user service', () => {
  it('runs xdg-open in a transient user unit with systemd-run, passing BROWSER by name; the URL is not logged', async () => {
    const fake = fakeSystemdRun();
    const { log, text } = capturedLogger();
    const opened = await systemBrowser(log, { ...fake.env, ...USER_UNIT_ENV })(URL_OPENED);
    expect(opened).toBe(true);
    expect(fake.recorded()).toEqual([
      ['--user', '--collect', '--quiet', '--service-type=exec', '--description=tokenbroker: open the browser', '--setenv=BROWSER', '--', XDG_OPEN, URL_OPENED],
    ]);
    // the chain the real systemd-run starts: xdg-open → $BROWSER, exactly once (not also through `open`)
    expect(await waitForBrowserUrl(fake.browserLog)).toBe(URL_OPENED);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(fake.browserUrls()).toEqual([URL_OPENED]);
    expect(text()).toMatch(/"via":"systemd-run"/);
    expect(text()).not.toContain('/start/');
  });

  it('is not used outside a user manager (INVOCATION_ID alone, as in a system service or CI): `open` runs $BROWSER as today', async () => {
    const fake = fakeSystemdRun();
    onTestFinished(withProcessBrowser(fake));
    const { log } = capturedLogger();
    const opened = await systemBrowser(log, { ...fake.env, INVOCATION_ID: USER_UNIT_ENV.INVOCATION_ID })(URL_OPENED);
    expect(opened).toBe(true);
    expect(await waitForBrowserUrl(fake.browserLog)).toBe(URL_OPENED);
    expect(fake.recorded()).toEqual([]);
  });

  it("is not used by a program that only inherited a service's variables (SYSTEMD_EXEC_PID is another process)", async () => {
    const fake = fakeSystemdRun();
    onTestFinished(withProcessBrowser(fake));
    const { log } = capturedLogger();
    const opened = await systemBrowser(log, { ...fake.env, ...USER_UNIT_ENV, SYSTEMD_EXEC_PID: String(process.ppid) })(URL_OPENED);
    expect(opened).toBe(true);
    expect(await waitForBrowserUrl(fake.browserLog)).toBe(URL_OPENED);
    expect(fake.recorded()).toEqual([]);
  });

  it("is used by the unit's own process (SYSTEMD_EXEC_PID is this process)", async () => {
    const fake = fakeSystemdRun();
    const { log } = capturedLogger();
    expect(await systemBrowser(log, { ...fake.env, ...USER_UNIT_ENV, SYSTEMD_EXEC_PID: String(process.pid) })(URL_OPENED)).toBe(true);
    expect(fake.recorded()).toHaveLength(1);
  });

  it('falls back to `open` when systemd-run fails, and says so without the URL', async () => {
    const fake = fakeSystemdRun(1);
    onTestFinished(withProcessBrowser(fake));
    const { log, text } = capturedLogger();
    const opened = await systemBrowser(log, { ...fake.env, ...USER_UNIT_ENV })(URL_OPENED);
    expect(opened).toBe(true);
    expect(fake.recorded()).toHaveLength(1);
    expect(await waitForBrowserUrl(fake.browserLog)).toBe(URL_OPENED);
    expect(text()).toMatch(/could not open the browser outside the service/);
    expect(text()).toMatch(/"exitCode":1/);
    expect(text()).toContain('Failed to connect to bus');
    expect(text()).not.toContain('/start/');
  });

  it('the real systemd-run accepts these options (it stops at the missing user bus, not at an option)', () => {
    const runtime = tempDir('tb-nobus-');
    const argv = systemdRunCommand('http://127.0.0.1:1/never-opened', { PATH: process.env['PATH'], BROWSER: '/bin/false' });
    expect(argv[0]).toBe('systemd-run');
    const result = spawnSync(argv[0]!, argv.slice(1), {
      env: { PATH: process.env['PATH'], BROWSER: '/bin/false', XDG_RUNTIME_DIR: runtime, DBUS_SESSION_BUS_ADDRESS: `unix:path=${runtime}/no-bus` },
      encoding: 'utf8',
    });
    expect(result.error, 'systemd-run is needed (Debian package systemd)').toBeUndefined();
    expect(result.stderr).not.toMatch(/unrecognized|invalid|unknown/i);
    expect(result.stderr).toMatch(/Failed to connect to bus/);
    expect(result.status).toBe(1);
  });
});

describe('the daemon under a user manager', () => {
  let idp: TestIdp;
  beforeAll(async () => {
    idp = await startTestIdp({ accessTokenTtl: 600 });
  });
  afterAll(async () => {
    await idp?.close();
  });

  it('opens the sign-in page through systemd-run', async () => {
    const fake = fakeSystemdRun();
    const harness = await startBroker({ profiles: { main: idpProfile(idp) } }, { env: { ...USER_UNIT_ENV, PATH: fake.env['PATH'] } });
    const login = runCli(['login'], { env: harness.env, timeoutMs: 30_000 });
    try {
      const url = await harness.nextBrowserUrl();
      expect(fake.recorded()).toHaveLength(1);
      const argv = fake.recorded()[0]!;
      expect(argv.slice(0, 7)).toEqual([
        '--user',
        '--collect',
        '--quiet',
        '--service-type=exec',
        '--description=tokenbroker: open the browser',
        '--setenv=BROWSER',
        '--',
      ]);
      // systemd-run is given the one-time launcher (the harness followed it to the authorization URL).
      const launcher = argv.at(-1)!;
      expect(launcher).toMatch(LAUNCHER_URL);
      expect(url).toMatch(/\/auth\?/);
      expect(harness.daemon.output()).toMatch(/"via":"systemd-run"/);
      expect(harness.daemon.output()).not.toContain(launcher);
      expect(harness.daemon.output()).not.toContain(url);
    } finally {
      await harness.stop();
      await login;
    }
  });
});
