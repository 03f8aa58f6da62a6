/**
 * The real-part test support works: the test IdP (oidc-provider), the browser user (headless Chromium), the
 * fault proxy and the fake browser script. Protocol steps are done by hand here so that these tests depend on
 * nothing in the product.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import open from 'open';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_BROWSER, launchBrowserUser, waitForBrowserUrl, type BrowserUser } from '../support/browser-user.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { startTestIdp, type TestIdp } from '../support/idp.js';

const CUSTOM_SCHEME = 'com.example.broker:/callback';

interface TokenResponse {
  access_token: string;
  refresh_token?: string;
  id_token?: string;
  expires_in: number;
  token_type: string;
  scope?: string;
}

/** An authorization request built by hand: RFC 6749 §4.1.1 + RFC 7636 §4.3 (S256) + OIDC nonce. */
function authorizationRequest(authorizationEndpoint: string, clientId: string, redirectUri: string, extra: Record<string, string> = {}) {
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(16).toString('base64url');
  const url = new URL(authorizationEndpoint);
  url.search = new URLSearchParams({
    client_id: clientId,
    response_type: 'code',
    redirect_uri: redirectUri,
    scope: 'openid offline_access email',
    state,
    nonce: randomBytes(16).toString('base64url'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    ...extra,
  }).toString();
  return { url: url.href, verifier, state, redirectUri };
}

async function postForm(url: string, form: Record<string, string>): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(url, { method: 'POST', body: new URLSearchParams(form) });
  const text = await response.text();
  return { status: response.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Browser sign-in, then the code exchange (RFC 6749 §4.1.3) — checks state and RFC 9207 `iss` on the way. */
async function signInAndExchange(idp: TestIdp, user: BrowserUser, redirectUri = CUSTOM_SCHEME, extra = {}) {
  const request = authorizationRequest(idp.endpoints.authorization, idp.clientId, redirectUri, extra);
  const signIn = await user.signIn(request.url);
  const redirect = new URL(signIn.redirectUrl);
  expect(signIn.redirectUrl.startsWith(redirectUri)).toBe(true);
  expect(redirect.searchParams.get('state')).toBe(request.state);
  expect(redirect.searchParams.get('iss')).toBe(idp.issuer);
  const code = redirect.searchParams.get('code');
  expect(code).toBeTruthy();
  const { status, json } = await postForm(idp.endpoints.token, {
    grant_type: 'authorization_code',
    code: code!,
    redirect_uri: redirectUri,
    code_verifier: request.verifier,
    client_id: idp.clientId,
  });
  expect(status, JSON.stringify(json)).toBe(200);
  return { tokens: json as unknown as TokenResponse, sawLoginForm: signIn.sawLoginForm, code: code! };
}

function refresh(idp: TestIdp, refreshToken: string) {
  return postForm(idp.endpoints.token, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: idp.clientId });
}

/** A loopback "broker" listener (RFC 8252 §7.3) that records what reaches /callback. */
async function startLoopback() {
  const received: string[] = [];
  const server = http.createServer((req, res) => {
    received.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'text/plain' }).end('You can close this window.');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let user: BrowserUser;
beforeAll(async () => {
  user = await launchBrowserUser();
});
afterAll(async () => {
  await user?.close();
});

describe('test IdP with oidc-provider routes', () => {
  let idp: TestIdp;
  let first: Awaited<ReturnType<typeof signInAndExchange>>;

  beforeAll(async () => {
    idp = await startTestIdp({ accessTokenTtl: 30 });
    await user.clearSession(); // cookies ignore ports: start clean for this IdP
  });
  afterAll(async () => {
    await idp?.close();
  });

  it('serves discovery with its issuer, S256 and RFC 9207 iss support', async () => {
    const discovery = (await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(idp.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(discovery['issuer']).toBe(idp.issuer);
    expect(discovery['code_challenge_methods_supported']).toEqual(['S256']);
    expect(discovery['authorization_response_iss_parameter_supported']).toBe(true);
    expect(discovery['token_endpoint']).toBe(idp.endpoints.token);
    expect(discovery['revocation_endpoint']).toBe(idp.endpoints.revocation);
    expect(discovery['end_session_endpoint']).toBe(idp.endpoints.endSession);
  });

  it('signs the user in through a custom-scheme redirect and issues access, refresh and ID tokens (offline_access, no prompt=consent)', async () => {
    first = await signInAndExchange(idp, user);
    expect(first.sawLoginForm).toBe(true);
    expect(first.tokens.token_type).toBe('Bearer');
    expect(first.tokens.expires_in).toBe(30);
    expect(first.tokens.refresh_token).toBeTruthy();
    const { payload } = await jwtVerify(first.tokens.id_token!, createRemoteJWKSet(new URL(idp.endpoints.jwks)), {
      issuer: idp.issuer,
      audience: idp.clientId,
    });
    expect(payload.sub).toBe('alice');
    expect(payload['email']).toBe('alice@example.test');
    expect(idp.counts.authorizationCode).toBe(1);
    for (const secret of [first.code, first.tokens.access_token, first.tokens.refresh_token!, first.tokens.id_token!]) {
      expect(idp.issuedSecrets.has(secret)).toBe(true);
    }
  });

  it('introspects access and refresh tokens as active, with exp and sub', async () => {
    const access = await idp.introspect(first.tokens.access_token);
    expect(access).toMatchObject({ active: true, sub: 'alice', token_type: 'Bearer' });
    expect(access.exp! - Date.now() / 1000).toBeGreaterThan(20);
    expect((await idp.introspect(first.tokens.refresh_token!)).active).toBe(true);
    expect((await idp.introspect('not-a-token')).active).toBe(false);
    expect(idp.requests.some((r) => r.path === new URL(idp.endpoints.introspection).pathname)).toBe(false);
  });

  it('refreshes without rotation, then with rotation after setRotation(true), with the new access-token TTL', async () => {
    const before = idp.counts.refreshToken;
    const plain = await refresh(idp, first.tokens.refresh_token!);
    expect(plain.status).toBe(200);
    expect(plain.json['refresh_token']).toBe(first.tokens.refresh_token); // rotation off: same token back

    idp.setRotation(true);
    idp.setAccessTokenTtl(5);
    const rotated = await refresh(idp, first.tokens.refresh_token!);
    expect(rotated.status).toBe(200);
    expect(rotated.json['expires_in']).toBe(5);
    const next = rotated.json['refresh_token'] as string;
    expect(next).toBeTruthy();
    expect(next).not.toBe(first.tokens.refresh_token);
    expect(idp.issuedSecrets.has(next)).toBe(true);
    expect((await idp.introspect(first.tokens.refresh_token!)).active).toBe(false); // consumed

    idp.setRotation(false);
    idp.setAccessTokenTtl(30);
    expect((await refresh(idp, next)).json['refresh_token']).toBe(next);
    expect(idp.counts.refreshToken).toBe(before + 3);
    first.tokens.refresh_token = next;
  });

  it('revokeRefreshToken makes the next refresh fail with invalid_grant', async () => {
    const errorsBefore = idp.counts.tokenEndpointErrors;
    await idp.revokeRefreshToken(first.tokens.refresh_token!);
    const { status, json } = await refresh(idp, first.tokens.refresh_token!);
    expect(status).toBe(400);
    expect(json['error']).toBe('invalid_grant');
    expect(idp.counts.tokenEndpointErrors).toBe(errorsBefore + 1);
    expect(idp.requests.at(-1)).toMatchObject({ method: 'POST', path: '/token', status: 400 });
  });

  it('signs in again silently with a live provider session (no page at all), and still issues a refresh token', async () => {
    const since = idp.requests.length;
    const again = await signInAndExchange(idp, user);
    expect(again.sawLoginForm).toBe(false);
    expect(again.tokens.refresh_token).toBeTruthy();
    expect(idp.requests.slice(since).filter((r) => r.path.startsWith('/interaction/'))).toEqual([]);
  });

  it('follows a loopback redirect to the listener on another port', async () => {
    const loopback = await startLoopback();
    try {
      const { tokens } = await signInAndExchange(idp, user, `http://127.0.0.1:${loopback.port}/callback`);
      expect(tokens.access_token).toBeTruthy();
      // Chromium may also ask the listener for /favicon.ico, as real browsers do.
      const callbacks = loopback.received.filter((path) => path.startsWith('/callback'));
      expect(callbacks).toHaveLength(1);
      expect(callbacks[0]).toMatch(/^\/callback\?code=/);
    } finally {
      await loopback.close();
    }
  });

  it('logs out at end_session back to the custom scheme; the next sign-in shows the form again', async () => {
    const logout = new URL(idp.endpoints.endSession);
    logout.search = new URLSearchParams({
      client_id: idp.clientId,
      post_logout_redirect_uri: 'com.example.broker:/logged-out',
      state: 'bye-state',
    }).toString();
    const { redirectUrl } = await user.signOut(logout.href);
    expect(redirectUrl).toBe('com.example.broker:/logged-out?state=bye-state');
    expect((await signInAndExchange(idp, user)).sawLoginForm).toBe(true);
  });

  it('with prompt=consent shows and confirms the consent page, and still issues a refresh token', async () => {
    const since = idp.requests.length;
    const { tokens, sawLoginForm } = await signInAndExchange(idp, user, CUSTOM_SCHEME, { prompt: 'consent' });
    expect(sawLoginForm).toBe(false);
    expect(tokens.refresh_token).toBeTruthy();
    expect(idp.requests.slice(since).some((r) => r.method === 'POST' && r.path.startsWith('/interaction/'))).toBe(true);
  });

  it('issues no refresh token without offline_access', async () => {
    const { tokens } = await signInAndExchange(idp, user, CUSTOM_SCHEME, { scope: 'openid email' });
    expect(tokens.refresh_token).toBeUndefined();
  });
});

describe('test IdP with Wristband routes', () => {
  let idp: TestIdp;
  beforeAll(async () => {
    idp = await startTestIdp({ wristbandRoutes: true });
    await user.clearSession();
  });
  afterAll(async () => {
    await idp?.close();
  });

  it('serves authorize, token, refresh, JWKS, revoke and logout at Wristband paths', async () => {
    expect(idp.endpoints.authorization).toBe(`${idp.issuer}/api/v1/oauth2/authorize`);
    const { tokens } = await signInAndExchange(idp, user);
    expect(idp.requests.some((r) => r.method === 'POST' && r.path === '/api/v1/oauth2/token' && r.status === 200)).toBe(true);

    const refreshed = await postForm(`${idp.issuer}/api/v1/oauth2/token`, {
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token!,
      client_id: idp.clientId,
    });
    expect(refreshed.status).toBe(200);

    const jwks = (await (await fetch(`${idp.issuer}/api/v1/oauth2/jwks`)).json()) as { keys: Array<{ alg: string }> };
    expect(jwks.keys[0]?.alg).toBe('RS256');

    const userinfo = await fetch(`${idp.issuer}/api/v1/oauth2/userinfo`, {
      headers: { authorization: `Bearer ${refreshed.json['access_token'] as string}` },
    });
    expect(await userinfo.json()).toMatchObject({ sub: 'alice', email: 'alice@example.test' });

    const revoked = await postForm(`${idp.issuer}/api/v1/oauth2/revoke`, { token: tokens.refresh_token!, client_id: idp.clientId });
    expect(revoked.status).toBe(200);
    expect(idp.counts.revocation).toBe(1);
    expect((await idp.introspect(tokens.refresh_token!)).active).toBe(false);

    const logout = new URL(`${idp.issuer}/api/v1/logout`);
    logout.search = new URLSearchParams({ client_id: idp.clientId, redirect_url: 'com.example.broker:/logged-out', state: 's1' }).toString();
    expect((await user.signOut(logout.href)).redirectUrl).toBe('com.example.broker:/logged-out?state=s1');
  });
});

describe('fault proxy', () => {
  it('in front of the IdP on the issuer port: 503, 429 + Retry-After, malformed body, drop, stall — all counted', async () => {
    const idp = await startTestIdp({ frontProxy: true });
    try {
      const faults = idp.faults!;
      expect(faults.url).toBe(idp.issuer);
      const discovery = (await (await fetch(idp.endpoints.discovery)).json()) as Record<string, unknown>;
      expect(discovery['token_endpoint']).toBe(`${idp.issuer}/token`); // Host forwarded: public URLs

      const token = idp.endpoints.token;
      const grant = { grant_type: 'refresh_token', refresh_token: 'whatever', client_id: idp.clientId };

      faults.setFault(/^\/token$/, { kind: 'status', status: 503 });
      expect((await postForm(token, grant)).status).toBe(503);

      faults.setFault(/^\/token$/, { kind: 'status', status: 429, headers: { 'Retry-After': '2' } });
      const limited = await fetch(token, { method: 'POST', body: new URLSearchParams(grant) });
      expect(limited.status).toBe(429);
      expect(limited.headers.get('retry-after')).toBe('2');

      faults.setFault(/^\/token$/, { kind: 'body', status: 200, body: '{"access_token": ' });
      const malformed = await fetch(token, { method: 'POST', body: new URLSearchParams(grant) });
      await expect(malformed.json()).rejects.toThrow();

      faults.setFault(/^\/token$/, { kind: 'drop' });
      await expect(fetch(token, { method: 'POST', body: new URLSearchParams(grant) })).rejects.toThrow();

      faults.setFault(/^\/token$/, { kind: 'stall', ms: 300 });
      const started = Date.now();
      await expect(fetch(token, { method: 'POST', body: new URLSearchParams(grant) })).rejects.toThrow();
      expect(Date.now() - started).toBeGreaterThanOrEqual(280);

      faults.setFault(/^\/token$/, null);
      const real = await postForm(token, grant);
      expect(real.status).toBe(400); // the provider itself: unknown refresh token
      expect(real.json['error']).toBe('invalid_grant');

      const tokenCalls = faults.requests.filter((r) => r.path === '/token');
      expect(tokenCalls.map((r) => r.faulted)).toEqual([true, true, true, true, true, false]);
      expect(idp.counts.refreshToken).toBe(6);
      expect(idp.counts.tokenEndpointErrors).toBe(3); // 503, 429 and the provider's 400
      expect(idp.requests.filter((r) => r.path === '/token').map((r) => r.status)).toEqual([503, 429, 200, undefined, undefined, 400]);
    } finally {
      await idp.close();
    }
  });

  it('a full sign-in and refresh work through the front proxy', async () => {
    const idp = await startTestIdp({ frontProxy: true });
    try {
      await user.clearSession();
      const { tokens } = await signInAndExchange(idp, user);
      expect((await refresh(idp, tokens.refresh_token!)).status).toBe(200);
      expect(idp.faults!.requests.some((r) => r.path.startsWith('/interaction/'))).toBe(true);
    } finally {
      await idp.close();
    }
  });

  it('standalone, in front of any server, with string-prefix rules', async () => {
    const target = http.createServer((req, res) => res.end(`upstream ${req.method} ${req.url}`));
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    const proxy = await startFaultProxy(`http://127.0.0.1:${(target.address() as AddressInfo).port}`);
    try {
      expect(await (await fetch(`${proxy.url}/a/b?x=1`)).text()).toBe('upstream GET /a/b?x=1');
      proxy.setFault('/a', { kind: 'status', status: 500, body: 'boom' });
      const failed = await fetch(`${proxy.url}/a/b`);
      expect([failed.status, await failed.text()]).toEqual([500, 'boom']);
      expect((await fetch(`${proxy.url}/other`)).status).toBe(200);
      proxy.clearFaults();
      expect((await fetch(`${proxy.url}/a`)).status).toBe(200);
      expect(proxy.requests.map((r) => [r.path, r.faulted])).toEqual([
        ['/a/b', false],
        ['/a/b', true],
        ['/other', false],
        ['/a', false],
      ]);
    } finally {
      await proxy.close();
      target.closeAllConnections();
      await new Promise<void>((resolve) => target.close(() => resolve()));
    }
  });
});

describe('fake browser script', () => {
  it('appends each URL it is asked to open as one line; waitForBrowserUrl picks them up in order', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tokenbroker-fake-browser-'));
    const log = join(dir, 'urls.log');
    try {
      const env = { ...process.env, TOKENBROKER_TEST_BROWSER_LOG: log };
      const waiting = waitForBrowserUrl(log, { timeoutMs: 5000 });
      await promisify(execFile)(FAKE_BROWSER, ['http://127.0.0.1:1/first?a=1&b=2'], { env });
      await promisify(execFile)(FAKE_BROWSER, ['com.example.broker:/second'], { env });
      expect(await waiting).toBe('http://127.0.0.1:1/first?a=1&b=2');
      expect(await waitForBrowserUrl(log, { after: 1 })).toBe('com.example.broker:/second');
      await expect(waitForBrowserUrl(log, { after: 2, timeoutMs: 200 })).rejects.toThrow(/no URL #3/);

      // The way the broker gets there: the `open` package runs xdg-open, which runs $BROWSER <url>.
      const saved = { BROWSER: process.env['BROWSER'], LOG: process.env['TOKENBROKER_TEST_BROWSER_LOG'] };
      try {
        process.env['BROWSER'] = FAKE_BROWSER;
        process.env['TOKENBROKER_TEST_BROWSER_LOG'] = log;
        await open('http://127.0.0.1:1/third?x=1&y=2');
        expect(await waitForBrowserUrl(log, { after: 2 })).toBe('http://127.0.0.1:1/third?x=1&y=2');
      } finally {
        restoreEnv('BROWSER', saved.BROWSER);
        restoreEnv('TOKENBROKER_TEST_BROWSER_LOG', saved.LOG);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}
