/**
 * "Sign in to <profile> again", on the desktop, for real: a private D-Bus session bus with a real notification
 * server on it (dunst, under Xvfb) and gnome-keyring for the daemon's tokens; `dbus-monitor` on that bus records
 * every org.freedesktop.Notifications.Notify call. The real daemon signs in at the test IdP, the IdP revokes the
 * grant (as an admin would), and the refresh that finds out ends the session: one notification per episode —
 * however often apps ask afterwards — a new one only after the session was healthy again, none with
 * `notify: false`. The text names the profile and the command; never a token.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type BrokerClient } from '../../client/index.js';
import { idpProfile, startBroker, type BrokerHarness } from '../support/broker.js';
import { tempDir, waitFor } from '../support/daemon.js';
import { startTestIdp, type TestIdp } from '../support/idp.js';
import { onPath, requireOrSkip } from '../support/prerequisites.js';
import { Keyring, PrivateBus } from '../support/private-keyring.js';
import { recordEvents, sleep, waitForEvent, waitForLog } from '../support/refresh-e2e.js';
import { signInHeadless } from '../support/signed-in.js';

const TOOLS = ['dbus-daemon', 'dbus-monitor', 'gnome-keyring-daemon', 'gdbus', 'secret-tool', 'dunst', 'Xvfb'];
const skip = requireOrSkip(
  process.platform === 'linux' && TOOLS.every(onPath),
  `notify: needs ${TOOLS.join(', ')} (apt-get install dbus gnome-keyring libglib2.0-bin libsecret-tools dunst xvfb)`,
);

interface Notification {
  readonly appName: string;
  readonly summary: string;
  readonly body: string;
}

let root: string;
let bus: PrivateBus;
let idp: TestIdp;
const processes: ChildProcess[] = [];
let monitorOutput = '';
let keyring: Keyring | undefined;
const cleanups: Array<() => Promise<unknown>> = [];

function track(child: ChildProcess): ChildProcess {
  processes.push(child);
  return child;
}

/** The Notify calls dbus-monitor has seen so far: app_name, summary and body (the 1st, 4th and 5th arguments). */
function notifications(): Notification[] {
  return monitorOutput
    .split(/\n(?=\S)/)
    .filter((block) => block.startsWith('method call') && block.includes('member=Notify'))
    .map((block) => {
      const strings = [...block.matchAll(/^\s+string "((?:[^"\\]|\\.)*)"$/gm)].map((m) => m[1]!);
      return { appName: strings[0]!, summary: strings[2]!, body: strings[3]! };
    });
}

beforeAll(async () => {
  if (skip) return;
  root = tempDir('tb-notify-');
  bus = await PrivateBus.start(root);
  const files = { data: path.join(root, 'keyring-data'), run: path.join(root, 'keyring-run') };
  fs.mkdirSync(files.data, { mode: 0o700 });
  fs.mkdirSync(files.run, { mode: 0o700 });
  keyring = await Keyring.start(bus, files);

  // A display for dunst: Xvfb picks a free one and writes its number to fd 3.
  const xvfb = track(spawn('Xvfb', ['-displayfd', '3', '-screen', '0', '800x600x24', '-nolisten', 'tcp'], { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] }));
  const display = await new Promise<string>((resolve, reject) => {
    let text = '';
    (xvfb.stdio[3] as NodeJS.ReadableStream).setEncoding('utf8');
    (xvfb.stdio[3] as NodeJS.ReadableStream).on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\n')) resolve(`:${text.trim()}`);
    });
    xvfb.once('exit', (code) => reject(new Error(`Xvfb exited with ${code}`)));
  });
  track(
    spawn('dunst', [], { env: { ...process.env, ...bus.env({ DISPLAY: display, HOME: root, XDG_CONFIG_HOME: path.join(root, 'xdg') }) }, stdio: 'ignore' }),
  );
  const owned = () =>
    /true/.test(
      bus.call([
        '--dest',
        'org.freedesktop.DBus',
        '--object-path',
        '/org/freedesktop/DBus',
        '--method',
        'org.freedesktop.DBus.NameHasOwner',
        'org.freedesktop.Notifications',
      ]),
    );
  await waitFor(owned, 15_000, () => 'dunst did not claim org.freedesktop.Notifications');

  const monitor = track(
    spawn('dbus-monitor', ['--address', bus.address, "type='method_call',interface='org.freedesktop.Notifications',member='Notify'"], {
      stdio: ['ignore', 'pipe', 'ignore'],
    }),
  );
  monitor.stdout!.setEncoding('utf8').on('data', (chunk: string) => (monitorOutput += chunk));
  await waitFor(
    () => monitorOutput.length > 0,
    10_000,
    () => 'dbus-monitor did not start',
  ); // it prints its own NameAcquired first

  idp = await startTestIdp({ accessTokenTtl: 600 });
}, 60_000);

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  await keyring?.stop();
  for (const child of processes.reverse()) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  }
  await idp?.close();
  await bus?.stop();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

/** A daemon on the private bus with profile "main", signed in. */
async function signedIn(profile: Record<string, unknown>): Promise<{ harness: BrokerHarness; app: BrokerClient }> {
  const harness = await startBroker({ profiles: { main: idpProfile(idp, profile) } }, { env: bus.env({ HOME: root }) });
  cleanups.push(() => harness.stop());
  const app = await connect({ socketPath: harness.daemon.socketPath, reconnect: false, timeoutMs: 30_000 });
  cleanups.push(() => app.close());
  await signInHeadless(harness, app);
  return { harness, app };
}

/** The IdP destroys the grant; an app's rejected token makes the daemon refresh, which finds out (invalid_grant). */
async function revokeAndFindOut(harness: BrokerHarness, app: BrokerClient, loginRequiredSoFar: number): Promise<void> {
  const stored = spawnSync('secret-tool', ['lookup', 'service', harness.keychainService, 'account', 'main'], {
    env: { ...process.env, ...bus.env() },
    encoding: 'utf8',
  });
  const refreshToken = (JSON.parse(stored.stdout) as { refreshToken: string }).refreshToken;
  await idp.revokeRefreshToken(refreshToken);
  const events = await recordEvents(app);
  const token = (await app.getToken()).accessToken;
  await expect(app.getToken({ rejected: token })).rejects.toMatchObject({ code: 'LOGIN_REQUIRED' });
  await waitForEvent(events, 'loginRequired', 1, 10_000);
  await waitForLog(harness, (l) => l['msg'] === 'refresh failed permanently; sign-in required', 10_000, loginRequiredSoFar);
}

describe.skipIf(skip)('desktop notification when a session needs a new sign-in', () => {
  it('one Notify per episode with the profile and the command; the next episode (after a new sign-in) gets one more', async () => {
    const before = notifications().length;
    const { harness, app } = await signedIn({});
    const secrets = (): string[] => [...idp.issuedSecrets];

    await revokeAndFindOut(harness, app, 0);
    await waitFor(
      () => notifications().length === before + 1,
      15_000,
      () => `one Notify call; dbus-monitor saw:\n${monitorOutput.slice(-2000)}`,
    );
    expect(notifications().at(-1)).toEqual({
      appName: 'tokenbroker',
      summary: 'Sign in to main again',
      body: 'The provider ended the session (the sign-in expired or was revoked). Run: tokenbroker login --profile main',
    });
    // The real server answered the call (gdbus returned its notification id).
    await waitForLog(harness, (l) => l['msg'] === 'desktop notification shown', 10_000);

    // Apps keep asking in the same episode: no second notification.
    for (let i = 0; i < 5; i++) await expect(app.getToken()).rejects.toMatchObject({ code: 'LOGIN_REQUIRED' });
    await sleep(1_500);
    expect(notifications()).toHaveLength(before + 1);

    // Healthy again (the sign-in joins the one the first ask opened: policy on demand), then a new failure:
    // a new episode, one more notification.
    await signInHeadless(harness, app);
    await revokeAndFindOut(harness, app, 1);
    await waitFor(
      () => notifications().length === before + 2,
      15_000,
      () => `a second Notify call; dbus-monitor saw:\n${monitorOutput.slice(-2000)}`,
    );
    expect(notifications().at(-1)!.summary).toBe('Sign in to main again');
    await sleep(1_000);
    expect(notifications()).toHaveLength(before + 2);

    const text = notifications()
      .map((n) => `${n.summary}\n${n.body}`)
      .join('\n');
    for (const secret of secrets()) expect(text).not.toContain(secret);
  });

  it('notify: false — the session ends the same way, and no Notify call is made', async () => {
    const before = notifications().length;
    const { harness, app } = await signedIn({ notify: false });
    await revokeAndFindOut(harness, app, 0);
    await sleep(2_000);
    expect(notifications()).toHaveLength(before);
    expect(harness.daemon.logs().filter((l) => String(l['msg']).includes('desktop notification'))).toEqual([]);
  });
});
