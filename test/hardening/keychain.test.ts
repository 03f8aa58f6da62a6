/**
 * Keychain faults (issue 7, item 6), end to end: the real daemon on a private D-Bus session bus whose
 * Secret Service (gnome-keyring) this test starts, stops, locks and unlocks.
 *
 * - Secret Service absent (the bus answers "name not provided"), then back: token.get, login and doctor say
 *   KEYCHAIN_UNAVAILABLE with a hint and "tokenbroker doctor"; once gnome-keyring is back on the same
 *   keyring files, the stored session is served by the same daemon without a new sign-in.
 * - Keyring locked (Secret Service `Lock`), then unlocked inside the running keyring (as a desktop prompt
 *   does): reads and writes fail with KEYCHAIN_UNAVAILABLE (writes with the "locked" hint); the same daemon
 *   serves the stored session on the first request after the unlock.
 * - Never a plaintext fallback: the daemon's directory, its HOME and the keyring's own files are scanned
 *   for every secret the IdP issued (the keyring file is encrypted: 0 hits there too).
 *
 * Complements test/e2e/keychain.test.ts (the store against no bus, no X11, a wrong-password keyring) and
 * test/e2e/login.test.ts (a sign-in without any bus).
 *
 *   node scripts/with-keyring.mjs vitest run test/hardening/keychain.test.ts
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../client/index.js';
import { launchBrowserUser, type BrowserUser } from '../support/browser-user.js';
import { idpProfile, startBroker, type BrokerHarness } from '../support/broker.js';
import { runCli, tempDir } from '../support/daemon.js';
import { startTestIdp, type TestIdp } from '../support/idp.js';
import { Keyring, PrivateBus, SYSTEM_PYTHON } from '../support/private-keyring.js';
import { onPath, requireOrSkip } from '../support/prerequisites.js';

const hasDbusPython = spawnSync(SYSTEM_PYTHON, ['-c', 'import dbus'], { stdio: 'ignore' }).status === 0;
const canRun = !requireOrSkip(
  process.platform === 'linux' && ['dbus-daemon', 'gnome-keyring-daemon', 'gdbus'].every(onPath) && hasDbusPython,
  'hardening-keychain needs Linux with dbus-daemon, gnome-keyring-daemon, gdbus and python3-dbus (apt-get install gnome-keyring dbus-x11 libglib2.0-bin python3-dbus)',
);

const figures: string[] = [];

/** Every regular file under `dirs`, searched for every secret: the names of files holding one. */
function scanForSecrets(dirs: readonly string[], secrets: readonly string[]): { files: number; bytes: number; hits: string[] } {
  let files = 0;
  let bytes = 0;
  const hits: string[] = [];
  for (const dir of dirs) {
    for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const file = path.join(entry.parentPath, entry.name);
      const content = fs.readFileSync(file);
      files++;
      bytes += content.length;
      const text = content.toString('latin1');
      for (const secret of secrets) if (text.includes(secret)) hits.push(`${file}: …${secret.slice(0, 6)}…`);
    }
  }
  return { files, bytes, hits };
}

let idp: TestIdp;
let user: BrowserUser;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  if (!canRun) return;
  idp = await startTestIdp({ accessTokenTtl: 600 });
  user = await launchBrowserUser();
});
afterAll(async () => {
  await user?.close();
  await idp?.close();
  if (figures.length > 0) console.log(['### Keychain faults', '', ...figures.map((f) => `- ${f}`)].join('\n'));
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  await user?.clearSession();
});

/** A private bus with gnome-keyring, a daemon using it (HOME and XDG dirs of its own), signed in. */
async function signedInSetup(): Promise<{
  bus: PrivateBus;
  keyringFiles: { data: string; run: string };
  keyring: Keyring;
  harness: BrokerHarness;
  home: string;
  token: string;
}> {
  const root = tempDir('tb-keychain-');
  cleanups.push(() => fs.promises.rm(root, { recursive: true, force: true }));
  const bus = await PrivateBus.start(root);
  cleanups.push(() => bus.stop());
  const keyringFiles = { data: path.join(root, 'keyring-data'), run: path.join(root, 'keyring-run') };
  fs.mkdirSync(keyringFiles.data, { mode: 0o700 });
  fs.mkdirSync(keyringFiles.run, { mode: 0o700 });
  let keyring = await Keyring.start(bus, keyringFiles);
  cleanups.push(() => keyring.stop());
  const home = path.join(root, 'home');
  fs.mkdirSync(home, { mode: 0o700 });
  const harness = await startBroker(
    { profiles: { main: idpProfile(idp) } },
    {
      env: bus.env({
        HOME: home,
        XDG_DATA_HOME: path.join(home, '.local/share'),
        XDG_STATE_HOME: path.join(home, '.local/state'),
        XDG_CACHE_HOME: path.join(home, '.cache'),
      }),
    },
  );
  cleanups.push(() => harness.stop());
  const login = runCli(['login'], { env: harness.env, timeoutMs: 60_000 });
  const { redirectUrl } = await user.signIn(await harness.nextBrowserUrl());
  expect((await runCli(['callback', redirectUrl], { env: harness.env })).code).toBe(0);
  expect((await login).code).toBe(0);
  const token = (await runCli(['token'], { env: harness.env })).stdout.trim();
  expect(token).not.toBe('');
  return {
    bus,
    keyringFiles,
    get keyring() {
      return keyring;
    },
    set keyring(next: Keyring) {
      keyring = next;
    },
    harness,
    home,
    token,
  };
}

/** A sign-in attempted now: returns the CLI results of `callback` and `login`. */
async function attemptLogin(harness: BrokerHarness) {
  const login = runCli(['login'], { env: harness.env, timeoutMs: 60_000 });
  const { redirectUrl } = await user.signIn(await harness.nextBrowserUrl());
  const callback = await runCli(['callback', redirectUrl], { env: harness.env });
  return { callback, login: await login };
}

async function doctorKeychain(harness: BrokerHarness): Promise<{ status: string; detail: string; fix?: string }> {
  const doctor = await runCli(['doctor', '--json'], { env: harness.env, timeoutMs: 60_000 });
  const report = JSON.parse(doctor.stdout) as { checks: Array<{ id: string; status: string; detail: string; fix?: string }> };
  return report.checks.find((c) => c.id === 'keychain')!;
}

describe.skipIf(!canRun)('keychain faults', () => {
  it('Secret Service absent, then back: KEYCHAIN_UNAVAILABLE with hints; the stored session comes back without a new sign-in', async () => {
    const setup = await signedInSetup();
    const { bus, harness } = setup;

    // The Secret Service goes away; the daemon restarts while it is gone.
    await setup.keyring.stop();
    expect(bus.secretServiceOwned()).toBe(false);
    await harness.restart();
    expect(harness.daemon.output()).toMatch(/could not read the keychain; will retry when an app asks/);

    const token = await runCli(['token'], { env: harness.env });
    expect(token.code).toBe(1);
    expect(token.stdout).toBe('');
    expect(token.stderr).toMatch(/KEYCHAIN_UNAVAILABLE/);
    expect(token.stderr).toMatch(/No Secret Service is running/);
    expect(token.stderr).toMatch(/tokenbroker doctor/);
    const client = await connect({ socketPath: harness.daemon.socketPath });
    await expect(client.getToken()).rejects.toMatchObject({ code: 'KEYCHAIN_UNAVAILABLE' });
    const [profile] = (JSON.parse((await runCli(['status', '--json'], { env: harness.env })).stdout) as { profiles: Array<Record<string, unknown>> }).profiles;
    expect(profile).toMatchObject({ state: 'logged-out', reason: 'keychain_unavailable' });
    const doctor = await doctorKeychain(harness);
    expect(doctor).toMatchObject({ status: 'fail', fix: expect.stringMatching(/Secret Service|keyring/) as unknown });

    // A sign-in while it is gone fails at the keychain, with the same hint, and stores nothing anywhere.
    const attempt = await attemptLogin(harness);
    expect(attempt.callback.code).toBe(1);
    expect(attempt.callback.stderr).toMatch(/KEYCHAIN_UNAVAILABLE/);
    expect(attempt.login.code).toBe(1);
    expect(attempt.login.stderr).toMatch(/KEYCHAIN_UNAVAILABLE/);

    // It comes back (same keyring files): the same daemon serves the stored session, no new sign-in.
    const exchanges = idp.counts.authorizationCode;
    const openedBefore = harness.browserUrlsOpened();
    setup.keyring = await Keyring.start(bus, setup.keyringFiles);
    const back = await client.getToken();
    expect(back.accessToken).toBe(setup.token);
    expect((await runCli(['token'], { env: harness.env })).stdout.trim()).toBe(setup.token);
    expect(idp.counts.authorizationCode).toBe(exchanges);
    expect(harness.browserUrlsOpened()).toBe(openedBefore); // no browser was opened
    await client.close();

    // No plaintext fallback anywhere: daemon dir (config, logs, browser log), its HOME, the keyring's files.
    const scan = scanForSecrets([harness.dir, setup.home, setup.keyringFiles.data, setup.keyringFiles.run], [...idp.issuedSecrets]);
    expect(scan.hits).toEqual([]);
    expect(fs.readdirSync(path.join(setup.keyringFiles.data, 'keyrings'))).toContain('login.keyring');
    figures.push(
      `absent → back: token.get (CLI and library), status, doctor and a sign-in all answered KEYCHAIN_UNAVAILABLE with a hint; after gnome-keyring returned the same daemon served the stored token (0 new exchanges, 0 browser openings); ` +
        `${scan.files} files / ${scan.bytes} bytes scanned for ${idp.issuedSecrets.size} secrets: ${scan.hits.length} hits`,
    );
  }, 120_000);

  it('keyring locked: reads and writes answer exactly KEYCHAIN_UNAVAILABLE (the "locked" hint for writes); unlocked: the same daemon serves the stored session at once', async () => {
    const setup = await signedInSetup();
    const { bus, harness } = setup;

    bus.lockLoginCollection();
    expect(bus.loginCollectionLocked()).toBe(true);
    await harness.restart();

    // Reading a locked keyring: libsecret (through keytar) answers "no such entry" instead of an error; the
    // store's probe (a write, which a locked collection refuses) tells the two apart: KEYCHAIN_UNAVAILABLE,
    // never LOGIN_REQUIRED, and nothing is deleted.
    const whileLocked = await runCli(['token'], { env: harness.env });
    expect(whileLocked.code).toBe(1);
    expect(whileLocked.stdout).toBe('');
    expect(whileLocked.stderr).toMatch(/KEYCHAIN_UNAVAILABLE/);
    expect(whileLocked.stderr).not.toMatch(/LOGIN_REQUIRED|not signed in/);
    const readCode = 'KEYCHAIN_UNAVAILABLE';

    // Writing to it fails loudly, with the locked hint and the doctor pointer.
    const attempt = await attemptLogin(harness);
    expect(attempt.callback.code).toBe(1);
    expect(attempt.callback.stderr).toMatch(/KEYCHAIN_UNAVAILABLE/);
    expect(attempt.callback.stderr).toMatch(/locked/i);
    expect(attempt.callback.stderr).toMatch(/tokenbroker doctor/);
    expect(attempt.login.code).toBe(1);
    const doctor = await doctorKeychain(harness);
    expect(doctor.status).toBe('fail');
    expect(`${doctor.detail} ${doctor.fix}`).toMatch(/locked/i);

    // Unlocked inside the running keyring, as a desktop's unlock prompt does. The same daemon serves the stored
    // session on the very next request: a locked keyring was never taken for "signed out", and nothing was
    // deleted or exchanged again.
    const exchanges = idp.counts.authorizationCode;
    const pid = harness.daemon.child.pid;
    bus.unlockLoginCollection();
    expect(bus.loginCollectionLocked()).toBe(false);
    const served = await runCli(['token'], { env: harness.env });
    expect(served.stderr).toBe('');
    expect(served.code).toBe(0);
    expect(served.stdout.trim()).toBe(setup.token);
    expect((JSON.parse((await runCli(['status', '--json'], { env: harness.env })).stdout) as { pid: number }).pid).toBe(pid);
    expect(idp.counts.authorizationCode).toBe(exchanges);

    const scan = scanForSecrets([harness.dir, setup.home, setup.keyringFiles.data], [...idp.issuedSecrets]);
    expect(scan.hits).toEqual([]);
    figures.push(
      `locked → unlocked: token.get while locked answered ${readCode}; a sign-in failed at the keychain with the "locked" hint; doctor failed with it; ` +
        `unlocked in the running keyring: the same daemon (pid ${pid}) served the stored token on the next request, 0 new exchanges; ${scan.files} files scanned: ${scan.hits.length} hits`,
    );
  }, 120_000);
});
