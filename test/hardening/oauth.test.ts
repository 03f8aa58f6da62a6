/**
 * OAuth attacks (issue 7, item 7; RFC 9700 §4, RFC 8252 §8) against the real daemon, a real IdP and
 * headless Chromium. Each attack is refused, and the sign-in it aimed at is either still pending (and
 * then completes normally) or failed cleanly — never a session for the attacker.
 *
 * Builds on test/e2e/login.test.ts ("bad input": unknown/replayed state, a forged `iss`, a provider error,
 * a forged code) and test/unit/loopback-listener.test.ts (the listener's checks in isolation).
 *
 *   node scripts/with-keyring.mjs vitest run test/hardening/oauth.test.ts
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowserUser, type BrowserUser } from '../support/browser-user.js';
import { idpProfile, startBroker, type BrokerHarness } from '../support/broker.js';
import { runCli } from '../support/daemon.js';
import { startTestIdp, type TestIdp } from '../support/idp.js';

let idp: TestIdp;
let user: BrowserUser;
let harnesses: BrokerHarness[] = [];
const figures: string[] = [];

beforeAll(async () => {
  idp = await startTestIdp({ accessTokenTtl: 600 });
  user = await launchBrowserUser();
});
afterAll(async () => {
  await user?.close();
  await idp?.close();
  console.log(['### OAuth attacks — what was tried', '', ...figures.map((f) => `- ${f}`)].join('\n'));
});
afterEach(async () => {
  await Promise.all(harnesses.map((h) => h.stop()));
  harnesses = [];
  await user.clearSession();
});

async function broker(profiles: Record<string, Record<string, unknown>>): Promise<BrokerHarness> {
  const harness = await startBroker({ profiles });
  harnesses.push(harness);
  return harness;
}

/** `tokenbroker login --profile P` in the background; resolves with the authorize URL it opened. */
async function startLogin(harness: BrokerHarness, profile: string): Promise<{ url: URL; done: ReturnType<typeof runCli> }> {
  const done = runCli(['login', '--profile', profile], { env: harness.env, timeoutMs: 60_000 });
  const url = new URL(await harness.nextBrowserUrl());
  return { url, done };
}

function callback(harness: BrokerHarness, url: string | URL) {
  return runCli(['callback', String(url)], { env: harness.env });
}

async function status(harness: BrokerHarness): Promise<Array<Record<string, unknown>>> {
  const result = await runCli(['status', '--json'], { env: harness.env });
  return (JSON.parse(result.stdout) as { profiles: Array<Record<string, unknown>> }).profiles;
}

/** A GET with full control of the request line and headers (fetch would normalise both). */
function rawGet(
  port: number,
  target: string,
  headers: Record<string, string> = { host: `127.0.0.1:${port}` },
  host = '127.0.0.1',
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host, port, method: 'GET', path: target, headers, setHost: false, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (c: string) => (body += c));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
    });
    request.on('error', reject);
    request.end();
  });
}

describe('state (RFC 6749 §10.12, RFC 9700 §4.7)', () => {
  it('a forged state changes nothing: the pending sign-in goes on and completes', async () => {
    const harness = await broker({ main: idpProfile(idp) });
    const { url, done } = await startLogin(harness, 'main');
    for (const forged of [
      `com.example.broker:/callback?code=x&state=${'f'.repeat(43)}&iss=${encodeURIComponent(idp.issuer)}`,
      `com.example.broker:/callback?code=x&state=${url.searchParams.get('state')!.slice(0, -1)}`, // one character short
      `com.example.broker:/callback?code=x&state=${url.searchParams.get('state')}&state=${'f'.repeat(43)}`, // repeated
      `com.example.broker:/callback?code=x`, // none
    ]) {
      const result = await callback(harness, forged);
      expect(result.code, forged).toBe(1);
      expect(result.stderr).toMatch(/LOGIN_FAILED/);
    }
    expect(idp.counts.authorizationCode).toBe(0); // no code was ever sent to the token endpoint
    expect((await status(harness))[0]).toMatchObject({ state: 'logging-in' });
    const { redirectUrl } = await user.signIn(url.toString());
    expect((await callback(harness, redirectUrl)).code).toBe(0);
    expect((await done).code).toBe(0);
    figures.push('state: 4 forged callbacks (unknown, truncated, repeated, missing) → LOGIN_FAILED, pending sign-in unaffected, 0 code exchanges');
  });

  it('the same redirect delivered twice at once: exactly one wins, one code exchange', async () => {
    const harness = await broker({ main: idpProfile(idp) });
    const { url, done } = await startLogin(harness, 'main');
    const before = idp.counts.authorizationCode;
    const { redirectUrl } = await user.signIn(url.toString());
    const results = await Promise.all([callback(harness, redirectUrl), callback(harness, redirectUrl), callback(harness, redirectUrl)]);
    expect(results.map((r) => r.code).sort()).toEqual([0, 1, 1]);
    expect(results.filter((r) => r.code === 1).every((r) => /already used state/.test(r.stderr))).toBe(true);
    expect(idp.counts.authorizationCode - before).toBe(1);
    expect((await done).code).toBe(0);
    // And once more after success: a replay.
    expect((await callback(harness, redirectUrl)).stderr).toMatch(/already used state/);
    figures.push('replay: one redirect delivered 3× concurrently + 1× later → 1 success, 3 LOGIN_FAILED, 1 token-endpoint exchange');
  });
});

describe("a redirect for one profile delivered at another profile's redirect URI (RFC 9700 §4.1)", () => {
  it('is refused before any code exchange, and both sign-ins go on', async () => {
    const harness = await broker({
      alpha: idpProfile(idp),
      beta: idpProfile(idp, { redirectUri: 'loopback' }),
    });
    const alpha = await startLogin(harness, 'alpha');
    const beta = await startLogin(harness, 'beta');
    const betaRedirect = new URL(beta.url.searchParams.get('redirect_uri')!);
    expect(betaRedirect.hostname).toBe('127.0.0.1');
    const before = idp.counts.authorizationCode;

    // The user signs in for alpha; the attacker routes alpha's code to beta's loopback listener…
    const { redirectUrl } = await user.signIn(alpha.url.toString());
    const stolen = new URL(redirectUrl);
    const atBeta = `${betaRedirect.origin}${betaRedirect.pathname}${stolen.search}`;
    const viaListener = await rawGet(Number(betaRedirect.port), `${betaRedirect.pathname}${stolen.search}`);
    expect(viaListener.status).toBe(400);
    expect(viaListener.body).toMatch(/different address than alpha&#39;s sign-in/);
    // …or hands it to the scheme handler dressed as beta's redirect.
    const viaCli = await callback(harness, atBeta);
    expect(viaCli.code).toBe(1);
    expect(viaCli.stderr).toMatch(/different address than alpha's sign-in asked for.*LOGIN_FAILED/);
    // …or the other way round: beta's state at alpha's custom scheme.
    const crossed = new URL(redirectUrl);
    crossed.searchParams.set('state', beta.url.searchParams.get('state')!);
    expect((await callback(harness, crossed)).stderr).toMatch(/different address than beta's sign-in/);

    expect(idp.counts.authorizationCode).toBe(before);
    expect((await status(harness)).map((p) => p['state'])).toEqual(['logging-in', 'logging-in']);
    // The genuine redirect still completes alpha; beta is still waiting.
    expect((await callback(harness, redirectUrl)).code).toBe(0);
    expect((await alpha.done).code).toBe(0);
    expect((await status(harness)).map((p) => p['state'])).toEqual(['active', 'logging-in']);
    figures.push(
      "cross-profile: alpha's code at beta's loopback listener (HTTP 400), at beta's URI via the CLI, beta's state at alpha's URI → all LOGIN_FAILED, 0 exchanges, both sign-ins intact",
    );
  }, 60_000);
});

describe('code injection (RFC 9700 §4.5): a code obtained with another PKCE pair', () => {
  it('is rejected by the provider when the broker redeems it with its own verifier → LOGIN_FAILED, no session', async () => {
    const harness = await broker({ main: idpProfile(idp) });
    const victim = await startLogin(harness, 'main');

    // The attacker runs its own authorization request (same client, same redirect URI, its own PKCE
    // pair) and signs in as itself.
    const attackerVerifier = randomBytes(32).toString('base64url');
    const attackerUrl = new URL(victim.url);
    attackerUrl.searchParams.set('state', randomBytes(32).toString('base64url'));
    attackerUrl.searchParams.set('nonce', randomBytes(32).toString('base64url'));
    attackerUrl.searchParams.set('code_challenge', createHash('sha256').update(attackerVerifier).digest('base64url'));
    const { redirectUrl: attackerRedirect } = await user.signIn(attackerUrl.toString(), { login: 'mallory' });
    const injected = new URL(attackerRedirect);
    expect(injected.searchParams.get('code')).toBeTruthy();
    injected.searchParams.set('state', victim.url.searchParams.get('state')!);

    const errorsBefore = idp.counts.tokenEndpointErrors;
    const exchangesBefore = idp.counts.authorizationCode;
    const result = await callback(harness, injected);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/LOGIN_FAILED/);
    expect(result.stderr).not.toContain(injected.searchParams.get('code')!);
    // The provider did the refusing (PKCE: its verifier does not match this code's challenge).
    expect(idp.counts.authorizationCode - exchangesBefore).toBe(1);
    expect(idp.counts.tokenEndpointErrors - errorsBefore).toBe(1);
    expect((await victim.done).code).toBe(1);
    const [profile] = await status(harness);
    expect(profile).not.toHaveProperty('subject');
    expect(profile!['state']).not.toBe('active');
    const token = await runCli(['token'], { env: harness.env });
    expect(token.code).toBe(5);
    figures.push(
      "code injection: mallory's code (own PKCE pair) injected into our pending sign-in → 1 exchange refused by the IdP (PKCE), LOGIN_FAILED, no session",
    );
  }, 60_000);
});

describe('mix-up (RFC 9207, RFC 9700 §4.4) with a second issuer', () => {
  let second: TestIdp;
  beforeAll(async () => {
    second = await startTestIdp({ accessTokenTtl: 600 });
  });
  afterAll(async () => {
    await second?.close();
  });

  it("a code from the other provider is refused by its iss, or by the right provider's token endpoint", async () => {
    const harness = await broker({
      honest: idpProfile(idp),
      other: { ...idpProfile(second), redirectUri: 'com.example.broker:/callback' },
    });
    const honest = await startLogin(harness, 'honest');
    const other = await startLogin(harness, 'other');
    // The user signs in at the second provider; the attacker swaps in the first profile's state.
    const { redirectUrl } = await user.signIn(other.url.toString());
    const fromSecond = new URL(redirectUrl);
    expect(fromSecond.searchParams.get('iss')).toBe(second.issuer);
    const honestState = honest.url.searchParams.get('state')!;
    const before = { first: idp.counts.authorizationCode, second: second.counts.authorizationCode };

    const withIss = new URL(fromSecond);
    withIss.searchParams.set('state', honestState);
    const r1 = await callback(harness, withIss);
    expect(r1.stderr).toMatch(/came from issuer .*127\.0\.0\.1.*expected .*RFC 9207/);
    // Both later variants reach the honest profile's own pending sign-in — but only the first reaches
    // the token endpoint: the code is never sent to the second provider from the honest profile.
    expect(idp.counts.authorizationCode).toBe(before.first);

    const results: string[] = [r1.stderr];
    // Refused before the exchange, so nothing was consumed: the honest sign-in is still pending.
    const honestPending = async () => (await status(harness)).find((p) => p['name'] === 'honest')!['state'];
    expect(await honestPending()).toBe('logging-in');
    const noIss = new URL(fromSecond);
    noIss.searchParams.set('state', honestState);
    noIss.searchParams.delete('iss');
    const r2 = await callback(harness, noIss);
    results.push(r2.stderr);
    expect(r2.stderr).toMatch(/no "iss" although the provider promises one/);
    expect(await honestPending()).toBe('logging-in');

    const forgedIss = new URL(fromSecond);
    forgedIss.searchParams.set('state', honestState);
    forgedIss.searchParams.set('iss', idp.issuer);
    const r3 = await callback(harness, forgedIss);
    results.push(r3.stderr);
    expect(r3.code).toBe(1);
    expect(r3.stderr).toMatch(/LOGIN_FAILED/);
    expect(idp.counts.authorizationCode - before.first).toBe(1); // redeemed at the honest provider, which refused it
    expect(second.counts.authorizationCode).toBe(before.second);
    // A code exchange that failed ends the sign-in (its state is single-use).
    expect((await honest.done).code).toBe(1);

    for (const text of results) expect(text).not.toContain(fromSecond.searchParams.get('code')!);
    expect((await status(harness)).find((p) => p['name'] === 'honest')).not.toHaveProperty('subject');
    figures.push(
      "mix-up: the second issuer's code with the first profile's state — with its own iss (refused, no exchange, sign-in still pending), without iss (refused: iss promised, still pending), with a forged iss (1 exchange at the first IdP, refused, sign-in ended) → LOGIN_FAILED each",
    );
  }, 90_000);
});

describe('the loopback listener (RFC 8252 §7.3, §8.3; RFC 9700 §4.11)', () => {
  it('never redirects: redirect_uri/next/return_to and odd targets get no Location, and nothing is navigated', async () => {
    const harness = await broker({ main: idpProfile(idp, { redirectUri: 'loopback' }) });
    const { url, done } = await startLogin(harness, 'main');
    const redirect = new URL(url.searchParams.get('redirect_uri')!);
    const port = Number(redirect.port);
    // Where an open redirect would send the browser: a local server that counts visitors.
    let visits = 0;
    const evil = http.createServer((_q, r) => {
      visits++;
      r.end('evil');
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    const evilUrl = `http://127.0.0.1:${(evil.address() as net.AddressInfo).port}/phish`;
    const e = encodeURIComponent(evilUrl);
    const targets = [
      `/callback?redirect_uri=${e}`,
      `/callback?next=${e}&state=${'x'.repeat(43)}`,
      `/callback?return_to=${e}&code=abc&state=${'x'.repeat(43)}`,
      `/callback?error=access_denied&state=${'x'.repeat(43)}&redirect_uri=${e}`,
      `/?next=${e}`,
      `/login?return_to=${e}`,
      `//127.0.0.1:${(evil.address() as net.AddressInfo).port}/phish`,
      `/callback/..%2f..%2fphish`,
      `/callback%2f..%2f?next=${e}`,
      `/\\\\evil.example/`,
      `/callback?continue=${e}&url=${e}&target=${e}&goto=${e}&redirect=${e}`,
    ];
    const before = fs.readFileSync(path.join(harness.dir, 'browser.log'), 'utf8');
    try {
      for (const target of targets) {
        const response = await rawGet(port, target);
        expect(response.status, target).toBeGreaterThanOrEqual(400);
        expect(response.headers.location, target).toBeUndefined();
        expect(response.headers.refresh, target).toBeUndefined();
        expect(response.body, target).not.toContain(evilUrl);
        expect(response.body, target).not.toMatch(/<script|http-equiv/i);
        expect(response.headers['content-security-policy']).toMatch(/default-src 'none'/);
      }
      // The daemon opened nothing either, and the sign-in is still pending and completes.
      expect(fs.readFileSync(path.join(harness.dir, 'browser.log'), 'utf8')).toBe(before);
      const { redirectUrl } = await user.signIn(url.toString());
      expect(redirectUrl.startsWith(redirect.toString())).toBe(true);
      expect((await done).code).toBe(0);
      expect(visits).toBe(0);
    } finally {
      evil.close();
    }
    figures.push(
      `open redirect: ${targets.length} crafted requests (redirect_uri, next, return_to, continue, url, //host, encoded traversal) → 4xx, no Location/Refresh, no script, 0 visits to the target, 0 browser openings; the sign-in then completed`,
    );
  }, 60_000);

  it('cannot be reached on any other address than 127.0.0.1, and refuses a wrong Host (DNS rebinding)', async () => {
    const harness = await broker({ main: idpProfile(idp, { redirectUri: 'loopback' }) });
    const { url, done } = await startLogin(harness, 'main');
    const port = Number(new URL(url.searchParams.get('redirect_uri')!).port);

    const refused = (host: string) =>
      new Promise<string>((resolve) => {
        const socket = net.createConnection({ host, port, timeout: 3_000 });
        socket.once('connect', () => {
          socket.destroy();
          resolve('connected');
        });
        socket.once('timeout', () => {
          socket.destroy();
          resolve('timeout');
        });
        socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
      });
    const external = Object.values(os.networkInterfaces())
      .flat()
      .filter((a): a is os.NetworkInterfaceInfo => a !== undefined && !a.internal && !a.address.startsWith('fe80'));
    const tried: string[] = [];
    for (const address of [...external.map((a) => a.address), '127.0.0.2', '::1']) {
      const outcome = await refused(address);
      tried.push(`${address}: ${outcome}`);
      expect(outcome, address).not.toBe('connected');
    }
    if (external.length === 0) console.log('hardening-oauth: no non-internal address on this machine; only 127.0.0.2 and ::1 were tried');

    const hosts: Array<[string, Record<string, string>]> = [
      ['a rebound name', { host: `evil.example:${port}` }],
      ['a look-alike', { host: `127.0.0.1.evil.example:${port}` }],
      ['localhost on another port', { host: `localhost:${port + 1}` }],
      ['the IP without the port', { host: '127.0.0.1' }],
      ['no Host at all', {}],
      ['two Host headers', { host: `127.0.0.1:${port}, evil.example` }],
    ];
    for (const [what, headers] of hosts) {
      const response = await rawGet(port, `/callback?code=x&state=${url.searchParams.get('state')}`, headers);
      expect(response.status, what).toBe(400);
      // Without any Host, Node's HTTP server itself answers 400 before the listener sees the request.
      if (headers['host'] !== undefined) expect(response.body, what).toMatch(/Unexpected Host header/);
    }
    // An absolute-form request target naming another host is refused too.
    const absolute = await rawGet(port, `http://evil.example/callback?state=${url.searchParams.get('state')}`);
    expect(absolute.status).toBe(400);

    // None of it consumed the state: the real redirect completes the sign-in.
    const { redirectUrl } = await user.signIn(url.toString());
    expect(redirectUrl).toContain(`127.0.0.1:${port}`);
    expect((await done).code).toBe(0);
    expect((await status(harness))[0]).toMatchObject({ state: 'active' });
    figures.push(
      `non-loopback: connections to ${tried.join(', ')} on the listener's port → none connected; wrong Host (${hosts.length} variants) and an absolute-form target → 400; the sign-in then completed`,
    );
  }, 60_000);
});
