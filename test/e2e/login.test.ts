/**
 * Sign-in and sign-out end to end: the real daemon and CLI, oidc-provider as the IdP, headless Chromium
 * as the user, gnome-keyring's Secret Service as the keychain.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import keytar from 'keytar';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type BrokerEvent } from '../../client/index.js';
import { launchBrowserUser, type BrowserUser } from '../support/browser-user.js';
import { idpProfile, startBroker, type BrokerHarness } from '../support/broker.js';
import { CLI, runCli, waitFor } from '../support/daemon.js';
import { startTestIdp, type TestIdp } from '../support/idp.js';

let idp: TestIdp;
let user: BrowserUser;
let harnesses: BrokerHarness[] = [];

beforeAll(async () => {
  idp = await startTestIdp({ accessTokenTtl: 600 });
  user = await launchBrowserUser();
});
afterAll(async () => {
  await user?.close();
  await idp?.close();
});
afterEach(async () => {
  await Promise.all(harnesses.map((h) => h.stop()));
  harnesses = [];
  await user.clearSession();
});

async function broker(profile: Record<string, unknown> = {}, options: Parameters<typeof startBroker>[1] = {}): Promise<BrokerHarness> {
  const harness = await startBroker({ profiles: { main: idpProfile(idp, profile) } }, options);
  harnesses.push(harness);
  return harness;
}

/** `tokenbroker login` running in the background, as a user would start it. */
function loginInBackground(harness: BrokerHarness, args: string[] = []) {
  return runCli(['login', ...args], { env: harness.env, timeoutMs: 60_000 });
}

/** Signs in through the custom scheme: the browser's redirect handed to `tokenbroker callback`. */
async function signInViaScheme(harness: BrokerHarness): Promise<void> {
  const login = loginInBackground(harness);
  const url = await harness.nextBrowserUrl();
  const { redirectUrl } = await user.signIn(url);
  expect(redirectUrl).toMatch(/^com\.example\.broker:\/callback\?/);
  const callback = await runCli(['callback', redirectUrl], { env: harness.env });
  expect(callback.stderr).toBe('');
  expect(callback.code).toBe(0);
  expect((await login).code).toBe(0);
}

async function storedEntry(harness: BrokerHarness): Promise<Record<string, unknown> | undefined> {
  const raw = await keytar.getPassword(harness.keychainService, 'main');
  return raw === null ? undefined : (JSON.parse(raw) as Record<string, unknown>);
}

describe('login through the custom scheme', () => {
  it('tokenbroker login → browser → tokenbroker callback → tokenbroker token', async () => {
    const harness = await broker();
    const login = loginInBackground(harness);
    const authorizeUrl = await harness.nextBrowserUrl();
    const params = new URL(authorizeUrl).searchParams;
    expect(params.get('code_challenge_method')).toBe('S256');
    expect(params.get('state')!.length).toBeGreaterThanOrEqual(22);
    expect(params.get('nonce')!.length).toBeGreaterThanOrEqual(22);
    expect(params.get('redirect_uri')).toBe('com.example.broker:/callback');

    const { redirectUrl } = await user.signIn(authorizeUrl, { login: 'alice' });
    const callback = await runCli(['callback', redirectUrl], { env: harness.env });
    expect(callback.code).toBe(0);
    expect(callback.stdout).toMatch(/signed in to main as alice/);

    const done = await login;
    expect(done.code).toBe(0);
    expect(done.stdout).toMatch(/Signed in to main as alice/);
    // The URL is always shown, for headless users: the one-time launcher, never the authorization URL.
    expect(done.stderr).toMatch(/If no browser opened, visit \(once\):\s+http:\/\/127\.0\.0\.1:\d+\/start\/[\w-]{43}\s/);
    expect(done.stderr).not.toContain(params.get('state')!);

    const token = await runCli(['token'], { env: harness.env });
    expect(token.code).toBe(0);
    const accessToken = token.stdout.trim();
    expect(accessToken).not.toMatch(/\s/);
    expect(await idp.introspect(accessToken)).toMatchObject({ active: true, sub: 'alice' });

    const status = await runCli(['status', '--json'], { env: harness.env });
    const profile = (JSON.parse(status.stdout) as { profiles: Array<Record<string, unknown>> }).profiles[0]!;
    expect(profile).toMatchObject({ name: 'main', state: 'active', subject: 'alice', scopes: expect.arrayContaining(['openid']) as unknown });
    expect(status.stdout).not.toContain(accessToken);

    const entry = await storedEntry(harness);
    expect(entry).toMatchObject({ v: 1, accessToken, subject: 'alice' });
    expect(typeof entry!['refreshToken']).toBe('string');
  });

  it('works through xdg-open and the registered .desktop handler', async () => {
    const harness = await broker();
    const home = path.join(harness.dir, 'home');
    const xdgEnv = { HOME: home, XDG_DATA_HOME: path.join(home, '.local/share'), XDG_CONFIG_HOME: path.join(home, '.config') };
    fs.mkdirSync(home, { recursive: true });
    const register = await runCli(['scheme', 'register', '--scheme', 'com.example.broker'], { env: { ...harness.env, ...xdgEnv } });
    expect(register.code).toBe(0);
    const status = await runCli(['scheme', 'status', '--scheme', 'com.example.broker'], { env: { ...harness.env, ...xdgEnv } });
    expect(status.stdout).toMatch(/com.example.broker: registered/);

    const login = loginInBackground(harness);
    const { redirectUrl } = await user.signIn(await harness.nextBrowserUrl());
    // The OS's part: xdg-open looks up the scheme's handler and runs `tokenbroker callback <url>`.
    // (xdg-open consults scheme handlers only in a graphical session, hence a DISPLAY.)
    const opener = spawn('xdg-open', [redirectUrl], { env: { ...process.env, ...harness.env, ...xdgEnv, DISPLAY: ':0', BROWSER: '' }, stdio: 'ignore' });
    expect(await new Promise((resolve) => opener.once('exit', resolve))).toBe(0);
    expect((await login).code).toBe(0);
    expect((await runCli(['token'], { env: harness.env })).code).toBe(0);
  });
});

describe('login through the loopback redirect', () => {
  it('the client library signs in via 127.0.0.1 and an ephemeral port', async () => {
    const harness = await broker({ redirectUri: 'loopback' });
    const client = await connect({ socketPath: harness.daemon.socketPath });
    const pending: string[] = [];
    const login = client.login({ onPending: (p) => pending.push(p.authorizationUrl!) });
    const url = await harness.nextBrowserUrl();
    const redirectUri = new URL(url).searchParams.get('redirect_uri')!;
    expect(redirectUri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    const { redirectUrl } = await user.signIn(url);
    expect(redirectUrl.startsWith(redirectUri)).toBe(true);
    const result = await login;
    expect(result).toMatchObject({ profile: 'main', state: 'active', subject: 'alice' });
    // The app was shown what the browser was opened with: the one-time launcher on the same listener.
    const opened = fs.readFileSync(path.join(harness.dir, 'browser.log'), 'utf8').trim();
    expect(opened).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${new URL(redirectUri).port}/start/[\\w-]{43}$`));
    expect(pending).toEqual([opened]);
    // The listener served one callback and is gone.
    await expect(fetch(redirectUri)).rejects.toThrow();
    await client.close();
  });
});

describe('tokens to apps', () => {
  it('two apps get the same token at once; a second login joins the pending one (one browser tab)', async () => {
    const harness = await broker();
    const [a, b] = await Promise.all([connect({ socketPath: harness.daemon.socketPath }), connect({ socketPath: harness.daemon.socketPath })]);
    await expect(a.getToken()).rejects.toMatchObject({ code: 'LOGIN_REQUIRED' });
    const events: BrokerEvent[] = [];
    await b.subscribe((event) => events.push(event));

    const first = a.login();
    const second = b.login();
    const url = await harness.nextBrowserUrl();
    const { redirectUrl } = await user.signIn(url);
    expect((await runCli(['callback', redirectUrl], { env: harness.env })).code).toBe(0);
    const [r1, r2] = await Promise.all([first, second]);
    expect(r1.subject).toBe('alice');
    expect(r2.joined).toBe(true);
    // Only one tab: the daemon started (and opened the browser for) one login, logged before it opens the
    // browser; and after a generous wait no second URL reached the browser.
    expect(harness.daemon.logs().filter((l) => l['msg'] === 'login started')).toHaveLength(1);
    await expect(harness.nextBrowserUrl(3_000)).rejects.toThrow();

    const [t1, t2] = await Promise.all([a.getToken(), b.getToken()]);
    expect(t1.accessToken).toBe(t2.accessToken);
    expect(t1).toMatchObject({ profile: 'main', tokenType: 'Bearer' });
    await waitFor(() => events.some((e) => e.event === 'loggedIn'));
    await Promise.all([a.close(), b.close()]);
  });

  it('a restarted daemon restores the session from the keychain', async () => {
    const harness = await broker();
    await signInViaScheme(harness);
    const before = (await runCli(['token'], { env: harness.env })).stdout.trim();
    await harness.restart();
    expect(harness.daemon.output()).toMatch(/session restored from the keychain/);
    const after = await runCli(['token'], { env: harness.env });
    expect(after.code).toBe(0);
    expect(after.stdout.trim()).toBe(before);
  });
});

describe('logout', () => {
  it('clears the keychain, revokes the refresh token, opens the provider logout, and tells apps', async () => {
    const harness = await broker();
    await signInViaScheme(harness);
    const refreshToken = (await storedEntry(harness))!['refreshToken'] as string;
    expect(await idp.introspect(refreshToken)).toMatchObject({ active: true });
    const client = await connect({ socketPath: harness.daemon.socketPath });
    const events: BrokerEvent[] = [];
    await client.subscribe((event) => events.push(event));

    const result = await runCli(['logout', '--json'], { env: harness.env });
    expect(result.code).toBe(0);
    const outcome = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(outcome).toMatchObject({ profile: 'main', keychainCleared: true, revoked: true });
    expect(await storedEntry(harness)).toBeUndefined();
    expect(await idp.introspect(refreshToken)).toMatchObject({ active: false });
    await waitFor(() => events.some((e) => e.event === 'loggedOut'));

    // The provider's logout page, then its redirect back through the scheme handler.
    const logoutUrl = await harness.nextBrowserUrl();
    expect(logoutUrl).toBe(outcome['logoutUrl']);
    const { redirectUrl } = await user.signOut(logoutUrl);
    expect(redirectUrl).toMatch(/^com\.example\.broker:\/logged-out/);
    const back = await runCli(['callback', redirectUrl], { env: harness.env });
    expect(back.stdout).toMatch(/signed out of main at the provider/);

    expect((await runCli(['token'], { env: harness.env })).code).toBe(5);
    await client.close();
  });
});

describe('the Wristband preset', () => {
  it('derives the endpoints without discovery and signs in and out on Wristband paths', async () => {
    const wristband = await startTestIdp({ wristbandRoutes: true });
    try {
      const host = `127.0.0.1:${wristband.port}`;
      const harness = await startBroker({
        profiles: {
          acme: {
            wristband: { applicationVanityDomain: host, tenantCustomDomain: host },
            clientId: wristband.clientId,
            redirectUri: 'com.example.broker:/callback',
            postLogoutRedirectUri: 'com.example.broker:/logged-out',
          },
        },
      });
      harnesses.push(harness);
      const login = loginInBackground(harness);
      const authorizeUrl = await harness.nextBrowserUrl();
      expect(new URL(authorizeUrl).pathname).toBe('/api/v1/oauth2/authorize');
      expect(new URL(authorizeUrl).searchParams.get('scope')).toBe('openid offline_access email');
      const { redirectUrl } = await user.signIn(authorizeUrl);
      expect((await runCli(['callback', redirectUrl], { env: harness.env })).code).toBe(0);
      expect((await login).code).toBe(0);
      const token = (await runCli(['token'], { env: harness.env })).stdout.trim();
      expect(await wristband.introspect(token)).toMatchObject({ active: true });
      // No discovery document was ever asked for.
      expect(wristband.requests.some((r) => r.path.includes('.well-known'))).toBe(false);

      const logout = JSON.parse((await runCli(['logout', '--json'], { env: harness.env })).stdout) as { revoked: boolean; logoutUrl: string };
      expect(logout.revoked).toBe(true);
      const logoutUrl = new URL(logout.logoutUrl);
      expect(logoutUrl.pathname).toBe('/api/v1/logout');
      expect(logoutUrl.searchParams.get('client_id')).toBe(wristband.clientId);
      expect(logoutUrl.searchParams.get('redirect_url')).toBe('com.example.broker:/logged-out');
      expect(wristband.requests.some((r) => r.path.startsWith('/api/v1/oauth2/revoke'))).toBe(true);
    } finally {
      await wristband.close();
    }
  });
});

describe('bad input', () => {
  it('unknown, replayed or tampered redirects are refused and leave the session untouched', async () => {
    const harness = await broker();
    await signInViaScheme(harness);
    const token = (await runCli(['token'], { env: harness.env })).stdout.trim();

    const unknown = await runCli(['callback', 'com.example.broker:/callback?code=abc&state=' + 'x'.repeat(43)], { env: harness.env });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown or already used state.*LOGIN_FAILED/);
    expect(token).not.toBe('');
    expect((await runCli(['token'], { env: harness.env })).stdout.trim()).toBe(token); // the session is untouched

    // A real redirect used twice: the second is a replay.
    const login = loginInBackground(harness);
    const { redirectUrl } = await user.signIn(await harness.nextBrowserUrl());
    expect((await runCli(['callback', redirectUrl], { env: harness.env })).code).toBe(0);
    expect((await login).code).toBe(0);
    const second = (await runCli(['token'], { env: harness.env })).stdout.trim();
    expect(second).not.toBe(token); // the new sign-in replaced the tokens
    const replay = await runCli(['callback', redirectUrl], { env: harness.env });
    expect(replay.code).toBe(1);
    expect(replay.stderr).toMatch(/already used state/);

    const notUrl = await runCli(['callback', 'not a url'], { env: harness.env });
    expect(notUrl.code).toBe(2);
    expect(notUrl.stderr).toMatch(/is not a URL/);

    expect((await runCli(['token'], { env: harness.env })).stdout.trim()).toBe(second); // untouched by the replay and the bad input
  });

  it('a mismatched iss is refused and the sign-in goes on; a provider error and a rejected code each fail that login clearly', async () => {
    const harness = await broker();
    await signInViaScheme(harness);

    const attempt = async (tamper: (url: URL) => void) => {
      const login = loginInBackground(harness);
      const { redirectUrl } = await user.signIn(await harness.nextBrowserUrl());
      const url = new URL(redirectUrl);
      tamper(url);
      const callback = await runCli(['callback', url.toString()], { env: harness.env });
      const done = await login;
      return { callback, done };
    };

    // A mismatched iss is refused before anything is consumed: that sign-in goes on (and the genuine
    // redirect then completes it).
    {
      const login = loginInBackground(harness);
      const { redirectUrl } = await user.signIn(await harness.nextBrowserUrl());
      const url = new URL(redirectUrl);
      url.searchParams.set('iss', 'https://evil.example');
      const mixUp = await runCli(['callback', url.toString()], { env: harness.env });
      expect(mixUp.code).toBe(1);
      expect(mixUp.stderr).toMatch(/iss/);
      const status = JSON.parse((await runCli(['status', '--json'], { env: harness.env })).stdout) as { profiles: Array<Record<string, unknown>> };
      expect(status.profiles[0]).toHaveProperty('loginStartedAt');
      expect((await runCli(['callback', redirectUrl], { env: harness.env })).code).toBe(0);
      expect((await login).code).toBe(0);
    }
    const before = (await runCli(['token'], { env: harness.env })).stdout.trim();

    const denied = await attempt((url) => {
      url.searchParams.delete('code');
      url.searchParams.set('error', 'access_denied');
      url.searchParams.set('error_description', 'the user said no');
    });
    expect(denied.callback.stderr).toMatch(/access_denied/);
    expect(denied.done.stderr).toMatch(/access_denied/);

    const badCode = await attempt((url) => url.searchParams.set('code', 'forged-code'));
    expect(badCode.callback.code).toBe(1);
    expect(badCode.callback.stderr).toMatch(/rejected the authorization code/);

    // The session from before is untouched by all of it.
    const after = await runCli(['token'], { env: harness.env });
    expect(after.code).toBe(0);
    expect(after.stdout.trim()).toBe(before);
  }, 60_000); // four sign-ins

  it('a keychain that cannot be used fails the login with KEYCHAIN_UNAVAILABLE, never a plaintext fallback', async () => {
    const harness = await broker({}, { env: { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/bus', DISPLAY: '' } });
    const login = loginInBackground(harness);
    const { redirectUrl } = await user.signIn(await harness.nextBrowserUrl());
    const callback = await runCli(['callback', redirectUrl], { env: harness.env });
    expect(callback.code).toBe(1);
    expect(callback.stderr).toMatch(/KEYCHAIN_UNAVAILABLE/);
    expect((await login).code).toBe(1);
    const token = await runCli(['token'], { env: harness.env });
    expect(token.code).toBe(1);
    expect(token.stderr).toMatch(/KEYCHAIN_UNAVAILABLE/);
    const files = fs.readdirSync(harness.dir, { recursive: true }).map(String);
    for (const file of files) {
      const full = path.join(harness.dir, file);
      if (!fs.statSync(full).isFile()) continue;
      const text = fs.readFileSync(full, 'utf8');
      for (const secret of idp.issuedSecrets) expect(text.includes(secret), `${file} holds a secret`).toBe(false);
    }
  });

  it('a pending login times out with a clear error', async () => {
    const harness = await broker({ loginTimeoutSeconds: 5 });
    const started = Date.now();
    const login = await loginInBackground(harness, ['--no-browser']);
    expect(login.code).toBe(1);
    expect(login.stderr).toMatch(/not completed within 5 s.*LOGIN_TIMEOUT/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(4_500);
  });

  it('Ctrl-C cancels the sign-in', async () => {
    const harness = await broker();
    const child = spawn(process.execPath, [CLI, 'login'], { env: { ...process.env, ...harness.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    await harness.nextBrowserUrl();
    await waitFor(() => stderr.includes('If no browser opened'));
    child.kill('SIGINT');
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(130);
    expect(stderr).toMatch(/sign-in cancelled/);
    expect(harness.daemon.output()).toMatch(/"code":"LOGIN_CANCELLED"/);
  });
});
