/**
 * Signing in without a local browser (RFC 8628 device authorization grant), end to end: the real daemon and
 * CLI, oidc-provider with its deviceFlow feature as the IdP, headless Chromium as the user on "another
 * device" (it opens the verification URI and confirms there), gnome-keyring as the keychain.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BrokerError, type BrokerClient, type LoginResult } from '../../client/index.js';
import { idpProfile, startBroker, type BrokerHarness } from '../support/broker.js';
import { CLI, ROOT, runCli, waitFor } from '../support/daemon.js';
import { launchDeviceUser, type DeviceUser } from '../support/device-user.js';
import { startTestIdp, type TestIdp } from '../support/idp.js';
import { validate } from '../support/json-schema.js';
import { client, recordEvents, storedEntry, tokenEndpointRequests } from '../support/refresh-e2e.js';

const schema = JSON.parse(fs.readFileSync(path.join(ROOT, 'proto/schema.json'), 'utf8')) as Record<string, unknown>;
const conforms = (name: string, value: unknown) => validate(schema, { $ref: `#/$defs/${name}` }, value);

let idp: TestIdp;
let user: DeviceUser;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  // interval 1 s: the provider sends none (clients then wait 5 s); a short one keeps the tests quick.
  idp = await startTestIdp({ accessTokenTtl: 600, deviceFlow: true, deviceInterval: 1 });
  user = await launchDeviceUser();
});
afterAll(async () => {
  await user?.close();
  await idp?.close();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function daemon(profile: Record<string, unknown> = {}): Promise<{ harness: BrokerHarness; app: BrokerClient }> {
  const harness = await startBroker({ profiles: { main: idpProfile(idp, profile) } });
  cleanups.push(() => harness.stop());
  const app = await client(harness, { timeoutMs: 60_000 });
  cleanups.push(() => app.close());
  return { harness, app };
}

/** Starts a device sign-in through the client library; resolves the pending answer, and the final one. */
function deviceLogin(app: BrokerClient, options: { device?: boolean } = {}): { pending: Promise<LoginResult>; done: Promise<LoginResult> } {
  let onPending!: (pending: LoginResult) => void;
  const pending = new Promise<LoginResult>((resolve) => (onPending = resolve));
  const done = app.login({ ...(options.device === false ? {} : { device: true }), openBrowser: true, onPending });
  done.catch(() => {});
  return { pending, done };
}

describe('device sign-in (RFC 8628) against oidc-provider', () => {
  it('login --device: the user opens verification_uri_complete elsewhere and confirms; tokens are stored and refresh as usual', async () => {
    const { harness, app } = await daemon();
    const events = await recordEvents(app);
    const { pending, done } = deviceLogin(app);
    const shown = await pending;
    // What the user needs on the other device; never the device code.
    expect(shown.state).toBe('logging-in');
    expect(shown.device?.userCode).toMatch(/^[A-Z]{4}-[A-Z]{4}$/);
    expect(shown.device?.verificationUri).toBe(idp.endpoints.deviceVerification);
    expect(shown.device?.verificationUriComplete).toBe(`${idp.endpoints.deviceVerification}?user_code=${shown.device!.userCode}`);
    expect(shown.device?.intervalSeconds).toBe(1);
    expect(shown.timesOutAt).toBe(shown.device?.expiresAt);
    expect(JSON.stringify(shown)).not.toMatch(/device_code|deviceCode/);
    expect(conforms('result.login', shown)).toEqual([]); // proto/schema.json describes the new fields
    expect((await app.status()).profiles[0]).toMatchObject({ state: 'logging-in', loginStartedAt: shown.startedAt });

    await user.confirm(shown.device!.verificationUriComplete!);
    const result = await done;
    expect(result).toMatchObject({ profile: 'main', state: 'active', subject: 'alice', email: 'alice@example.test' });
    expect(conforms('result.login', result)).toEqual([]);
    // Apps saw it as they see a browser sign-in.
    expect(events.map((e) => e.event)).toEqual(expect.arrayContaining(['stateChanged', 'loggedIn']));
    expect(events.find((e) => e.event === 'stateChanged')?.data).toMatchObject({ state: 'logging-in', previous: 'logged-out' });
    // Stored in the keychain with its refresh token and ID token, bound to this issuer and client.
    const entry = await storedEntry(harness);
    expect(entry).toMatchObject({ subject: 'alice', issuer: idp.issuer, clientId: idp.clientId });
    expect(typeof entry?.['refreshToken']).toBe('string');
    expect(typeof entry?.['idToken']).toBe('string');
    // No browser was opened on this machine: a device sign-in shows a code instead.
    await expect(harness.nextBrowserUrl(500)).rejects.toThrow();

    // The token is the provider's, and a later refresh works exactly as after a browser sign-in.
    const token = await app.getToken();
    expect((await idp.introspect(token.accessToken)).sub).toBe('alice');
    const refreshesBefore = idp.counts.refreshToken;
    const fresh = await app.getToken({ rejected: token.accessToken });
    expect(fresh.accessToken).not.toBe(token.accessToken);
    expect(idp.counts.refreshToken).toBe(refreshesBefore + 1);
    expect((await idp.introspect(fresh.accessToken)).active).toBe(true);
    // ... and the session comes back after a daemon restart, from the keychain.
    await harness.restart();
    const again = await client(harness);
    cleanups.push(() => again.close());
    expect((await again.getToken()).accessToken).toBe(fresh.accessToken);
  });

  it('"flow": "device": the plain verification URI, the code typed by hand; the daemon polls through authorization_pending', async () => {
    const { app } = await daemon({ flow: 'device' });
    const since = Date.now();
    const { pending, done } = deviceLogin(app, { device: false });
    const shown = await pending;
    expect(shown.device).toBeDefined();
    // The user is slow: the daemon has asked at least twice and heard "authorization_pending".
    await waitFor(
      () => tokenEndpointRequests(idp, since).filter((r) => r.status === 400).length >= 2,
      15_000,
      () => 'two pending polls',
    );
    await user.confirm(shown.device!.verificationUri, { userCode: shown.device!.userCode, login: 'bob' });
    expect(await done).toMatchObject({ state: 'active', subject: 'bob' });
    const polls = tokenEndpointRequests(idp, since);
    expect(polls.at(-1)?.status).toBe(200);
    // Never faster than the interval (1 s; the proxy's clock, so allow a little).
    for (let i = 1; i < polls.length; i++) expect(polls[i]!.at - polls[i - 1]!.at).toBeGreaterThanOrEqual(900);
  });

  it('access_denied: the user aborts on the provider page; the sign-in fails, and apps are told', async () => {
    const { app } = await daemon();
    const events = await recordEvents(app);
    const { pending, done } = deviceLogin(app);
    const shown = await pending;
    await user.confirm(shown.device!.verificationUriComplete!, { abort: true });
    const error = await done.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BrokerError);
    expect(error).toMatchObject({ code: 'LOGIN_FAILED', message: expect.stringContaining('access_denied') as unknown });
    await waitFor(
      () => events.some((e) => e.event === 'loginFailed'),
      10_000,
      () => 'loginFailed event',
    );
    expect(events.find((e) => e.event === 'loginFailed')?.data).toMatchObject({ profile: 'main', code: 'LOGIN_FAILED' });
    expect((await app.status()).profiles[0]?.state).toBe('logged-out');
  });

  it('a device sign-in takes over a browser sign-in under way: the app waiting on that one gets signed in too', async () => {
    const { harness, app } = await daemon();
    const other = await client(harness, { timeoutMs: 60_000 });
    cleanups.push(() => other.close());
    const browserLogin = other.login({ openBrowser: false });
    await waitFor(
      async () => (await app.status()).profiles[0]?.state === 'logging-in',
      10_000,
      () => 'browser sign-in pending',
    );
    const { pending, done } = deviceLogin(app);
    const shown = await pending;
    expect(shown.joined).toBe(false);
    await user.confirm(shown.device!.verificationUriComplete!, { login: 'carol' });
    expect(await done).toMatchObject({ subject: 'carol' });
    expect(await browserLogin).toMatchObject({ subject: 'carol' });
  });
});

describe('after a device sign-in, a dead refresh token', () => {
  it('under "flow": "device" the re-login is a device sign-in: no browser, and login joins it with its code', async () => {
    const { harness, app } = await daemon({ flow: 'device' });
    const first = deviceLogin(app, { device: false });
    await user.confirm((await first.pending).device!.verificationUriComplete!);
    await first.done;
    const events = await recordEvents(app);
    const token = await app.getToken();
    await idp.revokeRefreshToken((await storedEntry(harness))!['refreshToken'] as string);
    // The app that found the refresh token dead starts the re-login (policy "relogin", on demand): a device sign-in.
    await expect(app.getToken({ rejected: token.accessToken })).rejects.toMatchObject({
      code: 'LOGIN_REQUIRED',
      message: expect.stringContaining('a device sign-in was started') as unknown,
    });
    await waitFor(
      async () => (await app.status()).profiles[0]?.loginStartedAt !== undefined,
      10_000,
      () => 'a re-login under way',
    );
    await expect(app.getToken()).rejects.toMatchObject({
      code: 'LOGIN_REQUIRED',
      message: expect.stringContaining('device sign-in is in progress') as unknown,
    });
    await expect(harness.nextBrowserUrl(500)).rejects.toThrow(); // no browser
    const again = deviceLogin(app, { device: false });
    const shown = await again.pending;
    expect(shown.joined).toBe(true);
    await user.confirm(shown.device!.verificationUriComplete!, { login: 'alice' });
    expect(await again.done).toMatchObject({ state: 'active', subject: 'alice' });
    expect(events.some((e) => e.event === 'loginRequired')).toBe(true);
  });
});

describe('tokenbroker login --device (the CLI)', () => {
  it('--json: a line with the code and addresses while pending, then the result; no QR code when stdout is not a terminal', async () => {
    const { harness } = await daemon();
    const child = spawn(process.execPath, [CLI, 'login', '--device', '--json'], { env: { ...process.env, ...harness.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    cleanups.push(() => Promise.resolve(child.kill('SIGKILL')));
    await waitFor(
      () => stdout.includes('\n'),
      20_000,
      () => `first JSON line; stderr: ${stderr}`,
    );
    const shown = JSON.parse(stdout.split('\n')[0]!) as LoginResult;
    expect(shown.device?.userCode).toMatch(/^[A-Z]{4}-[A-Z]{4}$/);
    // The human text goes to stderr: the address and the code.
    expect(stderr).toContain(shown.device!.verificationUri);
    expect(stderr).toContain(shown.device!.userCode);
    expect(stderr).not.toMatch(/[▀▄█]/);
    await user.confirm(shown.device!.verificationUri, { userCode: shown.device!.userCode });
    expect(await exited).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[1]!)).toMatchObject({ profile: 'main', state: 'active', subject: 'alice' });
  });

  it('on a terminal: a QR code of verification_uri_complete, and a live progress line', async () => {
    const { harness, app } = await daemon();
    // `script` gives the CLI a pseudo-terminal for stdout and stderr, as a user's shell would.
    const command = `${process.execPath} ${CLI} login --device`;
    const child = spawn('script', ['-qfec', command, '/dev/null'], { env: { ...process.env, ...harness.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    cleanups.push(() => Promise.resolve(child.kill('SIGKILL')));
    await waitFor(
      () => output.includes('Waiting for you to confirm'),
      20_000,
      () => `progress line; output: ${output}`,
    );
    // The app joins the CLI's sign-in and learns the same code.
    const { pending, done } = deviceLogin(app);
    const shown = await pending;
    expect(shown.joined).toBe(true);
    const complete = shown.device!.verificationUriComplete!;
    const { renderUnicodeCompact } = await import('uqr');
    const qr = renderUnicodeCompact(complete, { border: 1 });
    expect(output.replace(/\r\n/g, '\n')).toContain(qr);
    expect(output).toContain(shown.device!.userCode);
    await user.confirm(complete);
    expect(await done).toMatchObject({ subject: 'alice' });
    expect(await exited).toBe(0);
    expect(output).toContain('Signed in to main as alice@example.test');
  });

  it('a browser sign-in over SSH (no display) says that --device exists, when the provider supports it', async () => {
    const { harness } = await daemon();
    const env: NodeJS.ProcessEnv = { ...process.env, ...harness.env, SSH_CONNECTION: '10.0.0.2 50000 10.0.0.1 22' };
    delete env['DISPLAY'];
    delete env['WAYLAND_DISPLAY'];
    const child = spawn(process.execPath, [CLI, 'login', '--no-browser'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    cleanups.push(() => Promise.resolve(child.kill('SIGKILL')));
    await waitFor(
      () => stderr.includes('Waiting'),
      20_000,
      () => `waiting line; stderr: ${stderr}`,
    );
    expect(stderr).toContain('tokenbroker login --device');
    child.kill('SIGINT'); // the CLI cancels the sign-in
    expect(await exited).toBe(130);
  });

  it('--help documents --device', async () => {
    const { stdout, code } = await runCli(['login', '--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('--device');
    expect(stdout).toContain('RFC 8628');
  });
});
