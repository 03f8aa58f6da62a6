/**
 * Provider faults (issue 7, item 5), end to end: the real daemon, the test IdP (oidc-provider) behind its fault
 * proxy, headless Chromium. Each fault must give a clear state and error (status: `lastRefresh.code`,
 * `consecutiveFailures`, `reason`; events: `refreshFailed`/`loginFailed` with the code), a bounded request rate,
 * valid tokens still served, and recovery without the user.
 *
 * - refresh under faults, table-driven on one signed-in daemon: provider down (port closed), 500, 503 and 429 with
 *   and without Retry-After (seconds and HTTP-date), malformed JSON, token responses missing fields;
 * - a daemon started while the provider is down;
 * - sign-in under faults, table-driven: discovery down, key set down, token endpoint refused/5xx/stalled beyond
 *   httpTimeoutSeconds/malformed/without ID token — then a sign-in that works;
 * - signing-key (JWKS) rotation: rollover, retirement of the old key, both right after a fetch; and the key set
 *   unreachable at the moment of a rotation while refresh tokens rotate too;
 * - a rotated refresh whose answer is lost on the way back (rotation off: harmless; on: the grant is gone);
 * - clock skew between the daemon and the IdP: the daemon runs with its clock moved (a preloaded module shifts
 *   `Date`); the expiry it works with stays inside the IdP's, and the bound where sign-in stops working is shown.
 *
 * Size: the port-closed outage lasts TOKENBROKER_OUTAGE_SECONDS (default 8; a longer one shows the rate at the cap):
 *   TOKENBROKER_OUTAGE_SECONDS=60 node scripts/with-keyring.mjs vitest run test/hardening/provider-faults.test.ts
 *
 * Not repeated here (see test/e2e/refresh-transient.test.ts): 503 outage rates over 15 s, dropped connections, stalls
 * of the token endpoint during refresh, 429 + Retry-After longer than the in-request cap, a captive portal's HTML.
 * The hour-long outage rate is test/unit/session-refresh.test.ts ("a provider down for an hour").
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type BrokerClient, BrokerError, type BrokerEvent } from '../../client/index.js';
import type { BrokerHarness } from '../support/broker.js';
import { tempDir } from '../support/daemon.js';
import type { FaultProxy } from '../support/fault-proxy.js';
import {
  client,
  profileStatus,
  ratePerMinute,
  recordEvents,
  signIn,
  sleep,
  startRefreshBroker,
  storedEntry,
  tokenEndpointRequests,
  useRefreshWorld,
  waitFor,
  waitForEvent,
} from '../support/refresh-e2e.js';

const TOKEN = /^\/token$/;
const JWKS = /^\/jwks$/;
const DISCOVERY = /^\/\.well-known\/openid-configuration$/;
/** got retries once per attempt; the session backs off 0.3 s → 2 s. */
const RETRY = { limit: 1, baseDelayMs: 300, maxDelayMs: 2_000 };
const PROFILE = { httpTimeoutSeconds: 1, refresh: { retry: RETRY } };
/** Long enough that no timer refresh runs in the middle of a row; recovery runs on the backoff timer. */
const DEFAULT_TTL = 30;
const OUTAGE_MS = Number(process.env['TOKENBROKER_OUTAGE_SECONDS'] ?? 8) * 1000;

const world = useRefreshWorld({ accessTokenTtl: DEFAULT_TTL, frontProxy: true });
let faults: FaultProxy;
const figures: string[] = [];

beforeAll(() => {
  faults = world.idp.faults!;
});
// These run before the world's own ("after" hooks run as a stack): figures before the IdP closes, faults reset before the clean-ups.
afterAll(() => {
  if (figures.length > 0) console.log(figures.join('\n'));
});
afterEach(async () => {
  faults.clearFaults();
  await faults.setReachable(true);
  world.idp.setRotation(false);
  world.idp.setAccessTokenTtl(DEFAULT_TTL);
});

interface Signed {
  readonly harness: BrokerHarness;
  readonly app: BrokerClient;
  readonly events: BrokerEvent[];
}

async function signedInBroker(profile: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}): Promise<Signed> {
  // token.get waits ≤ 1 s for a refresh
  const { harness, app } = await world.signedIn({ ...PROFILE, ...profile }, { broker: { env }, client: { timeoutMs: 1_500 } });
  return { harness, app, events: await recordEvents(app) };
}

async function failure(promise: Promise<unknown>): Promise<BrokerError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof BrokerError) return error;
    throw error;
  }
  throw new Error('expected a BrokerError, got a result');
}

/** A session between transient failures: still active (or refreshing: the next backoff attempt is under way). */
async function expectRetrying(app: BrokerClient, code: string, what = ''): Promise<void> {
  const status = await profileStatus(app);
  expect(status, what).toMatchObject({ lastRefresh: { ok: false, code } });
  expect(['active', 'refreshing'], what).toContain(status.state);
  expect(status.consecutiveFailures, what).toBeGreaterThanOrEqual(1);
  expect(status.reason, what).toBeUndefined();
}

const count = (events: readonly BrokerEvent[], name: string) => events.filter((e) => e.event === name).length;
const retryLines = (harness: BrokerHarness, since: number) =>
  harness.daemon
    .output()
    .split('\n')
    .filter((l) => l.includes('"refresh failed; will retry"'))
    .map((l) => Date.parse((JSON.parse(l) as { time: string }).time))
    .filter((t) => t >= since);

function table(title: string, rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return [title, ...rows.map((r) => '  ' + r.map((c, i) => c.padEnd(widths[i]!)).join(' | '))].join('\n');
}

// ---- refresh -------------------------------------------------------------------------------------------------

interface RefreshRow {
  readonly name: string;
  readonly apply: () => void | Promise<void>;
  readonly undo?: () => Promise<void>;
  /** `lastRefresh.code` and the `refreshFailed` event's code (token.get itself answers IDP_UNAVAILABLE + retryAt). */
  readonly code: 'IDP_UNAVAILABLE' | 'IDP_ERROR';
  /** Every gap between two token requests during the fault is at least this (Retry-After honoured). */
  readonly minGapMs?: number;
  /** Only the first gap (a fixed HTTP-date ages as the fault lasts). */
  readonly firstGapMs?: number;
  /** Keep the fault this long, apps asking every 100 ms, and report the attempt rate. */
  readonly sustainMs?: number;
}

const tokenBody = (body: Record<string, unknown> | string) => ({
  kind: 'body' as const,
  status: 200,
  body: typeof body === 'string' ? body : JSON.stringify(body),
});
const REFRESH_ROWS: readonly RefreshRow[] = [
  {
    name: 'provider down: port closed (ECONNREFUSED)',
    apply: () => faults.setReachable(false),
    undo: () => faults.setReachable(true),
    code: 'IDP_UNAVAILABLE',
    sustainMs: OUTAGE_MS,
  },
  {
    name: '500 with an OAuth error body',
    apply: () => faults.setFault(TOKEN, { kind: 'status', status: 500, body: '{"error":"server_error"}', headers: { 'content-type': 'application/json' } }),
    code: 'IDP_UNAVAILABLE',
  },
  { name: '503, no Retry-After', apply: () => faults.setFault(TOKEN, { kind: 'status', status: 503, body: 'down for maintenance' }), code: 'IDP_UNAVAILABLE' },
  {
    name: '503 + Retry-After: 1 (waited within the request)',
    apply: () => faults.setFault(TOKEN, { kind: 'status', status: 503, headers: { 'retry-after': '1' } }),
    code: 'IDP_UNAVAILABLE',
    minGapMs: 950,
  },
  {
    name: '503 + Retry-After: HTTP-date 3–4 s ahead (waited by the session)',
    apply: () => faults.setFault(TOKEN, { kind: 'status', status: 503, headers: { 'retry-after': new Date(Date.now() + 4_000).toUTCString() } }),
    code: 'IDP_UNAVAILABLE',
    firstGapMs: 2_900,
  },
  {
    name: '429, no Retry-After',
    apply: () => faults.setFault(TOKEN, { kind: 'status', status: 429, body: '{"error":"slow_down"}', headers: { 'content-type': 'application/json' } }),
    code: 'IDP_UNAVAILABLE',
  },
  { name: '200, malformed JSON', apply: () => faults.setFault(TOKEN, tokenBody('{"access_token":"at","token_type":"Bea')), code: 'IDP_ERROR' },
  { name: '200, no access_token', apply: () => faults.setFault(TOKEN, tokenBody({ token_type: 'Bearer', expires_in: 60 })), code: 'IDP_ERROR' },
  { name: '200, no token_type', apply: () => faults.setFault(TOKEN, tokenBody({ access_token: 'at', expires_in: 60 })), code: 'IDP_ERROR' },
  {
    name: '200, expires_in "soon"',
    apply: () => faults.setFault(TOKEN, tokenBody({ access_token: 'at', token_type: 'Bearer', expires_in: 'soon' })),
    code: 'IDP_ERROR',
  },
];

describe('refresh under provider faults', () => {
  it(
    `${REFRESH_ROWS.length} faults, one after another: clear status and events, the valid token still served, recovery by the backoff timer`,
    { timeout: 80_000 + OUTAGE_MS },
    async () => {
      const { harness, app, events } = await signedInBroker();
      const rows: string[][] = [['fault', 'lastRefresh.code', 'session attempts', 'HTTP requests', 'first gap', 'recovered after']];
      for (const row of REFRESH_ROWS) {
        const before = await app.getToken({ minValidSeconds: 0 });
        const from = events.length;
        const refreshedBefore = count(events, 'tokenRefreshed');
        const start = Date.now();
        await row.apply();

        // An app whose API rejected the token forces a refresh: it fails, with when the next attempt is due.
        const forced = await failure(app.getToken({ rejected: before.accessToken }));
        expect(forced.code, row.name).toBe('IDP_UNAVAILABLE');
        expect(forced.retryAt, row.name).toBeGreaterThanOrEqual(start);
        await waitFor(
          () => events.slice(from).some((e) => e.event === 'refreshFailed'),
          6_000,
          () => `${row.name}: refreshFailed`,
        );
        const event = events.slice(from).find((e) => e.event === 'refreshFailed')!;
        expect(event.data, row.name).toMatchObject({ profile: 'main', code: row.code, retryAt: expect.any(Number) as unknown });
        await expectRetrying(app, row.code, row.name);

        // Other apps keep getting the token, which the IdP still accepts.
        const served = await app.getToken();
        expect(served.accessToken, row.name).toBe(before.accessToken);
        expect((await world.idp.introspect(served.accessToken)).active, row.name).toBe(true);

        if (row.minGapMs !== undefined || row.firstGapMs !== undefined) {
          await waitFor(
            () => tokenEndpointRequests(world.idp, start).length >= (row.minGapMs ? 3 : 2),
            15_000,
            () => `${row.name}: more requests`,
          );
        }
        if (row.sustainMs !== undefined) {
          while (Date.now() < start + row.sustainMs) {
            await app.getToken().catch(() => undefined);
            await sleep(100);
          }
        }
        const times = tokenEndpointRequests(world.idp, start).map((r) => r.at);
        const gaps = times.slice(1).map((t, i) => t - times[i]!);
        if (row.minGapMs !== undefined) for (const gap of gaps) expect(gap, `${row.name}: gaps ${gaps.join(', ')}`).toBeGreaterThanOrEqual(row.minGapMs);
        if (row.firstGapMs !== undefined) expect(gaps[0], `${row.name}: gaps ${gaps.join(', ')}`).toBeGreaterThanOrEqual(row.firstGapMs);
        const attempts = retryLines(harness, start);
        expect(attempts.length, `${row.name}: retry attempts`).toBeGreaterThanOrEqual(1); // the forced refresh failed and was scheduled again
        const sustainMs = row.sustainMs;
        if (sustainMs !== undefined) {
          const windowMs = Math.max(2_000, Math.round(sustainMs / 6 / 1000) * 1000);
          const rates = ratePerMinute(attempts, start, start + sustainMs, windowMs);
          figures.push(
            `[provider-faults] ${row.name}, ${sustainMs / 1000} s with apps asking every 100 ms: ${attempts.length} refresh attempts (each ≤ 2 connection attempts); ` +
              `attempts per minute in ${windowMs / 1000}-s windows: ${rates.join(', ')}`,
          );
          // Bounded by the backoff (0.3 s doubling to 2 s, equal jitter: 1–2 s apart at the cap), however often the
          // apps ask: at most one attempt a second once at the cap.
          expect(attempts.length).toBeLessThanOrEqual(Math.ceil(sustainMs / 1_000) + 3);
          const secondHalf = attempts.filter((t) => t >= start + sustainMs / 2).length;
          expect(secondHalf).toBeLessThanOrEqual(Math.ceil(sustainMs / 2 / 1_000) + 1);
          // And retried, not given up: at the cap an attempt at least every 2 s (+1 s for a loaded machine).
          expect(attempts.length).toBeGreaterThanOrEqual(Math.floor(sustainMs / 3_000));
          expect(secondHalf).toBeGreaterThanOrEqual(Math.floor(sustainMs / 2 / 3_000));
        }

        // The provider is back: the next backoff slot refreshes, no app and no user needed.
        const cleared = Date.now();
        if (row.undo === undefined) faults.clearFaults();
        else await row.undo();
        await waitForEvent(events, 'tokenRefreshed', refreshedBefore + 1, RETRY.maxDelayMs + 4_000);
        const recovered = Date.now() - cleared;
        const after = await profileStatus(app);
        expect(after, row.name).toMatchObject({ state: 'active', lastRefresh: { ok: true } });
        expect(after.consecutiveFailures, row.name).toBeUndefined();
        const fresh = await app.getToken();
        expect(fresh.accessToken, row.name).not.toBe(before.accessToken);
        expect((await world.idp.introspect(fresh.accessToken)).active, row.name).toBe(true);
        expect(
          events.some((e) => e.event === 'loginRequired'),
          row.name,
        ).toBe(false);
        rows.push([row.name, row.code, String(attempts.length), String(times.length), gaps[0] === undefined ? '–' : `${gaps[0]} ms`, `${recovered} ms`]);
      }
      figures.push(table('[provider-faults] refresh under faults (httpTimeoutSeconds 1, retry limit 1, backoff 0.3 → 2 s):', rows));
    },
  );

  it(
    'a daemon started while the provider is down: the stored session is back, its valid token served; refreshes wait for the provider',
    { timeout: 30_000 },
    async () => {
      const { harness } = await signedInBroker();
      await faults.setReachable(false);
      await harness.restart();
      const app = await client(harness, { timeoutMs: 1_500 });
      world.defer(() => app.close());
      const events = await recordEvents(app);
      expect(await profileStatus(app)).toMatchObject({ state: 'active' });
      const stored = await app.getToken({ minValidSeconds: 0 });
      expect((await world.idp.introspect(stored.accessToken)).active).toBe(true);
      // Discovery is not cached in a new process: the forced refresh cannot even find the token endpoint.
      expect((await failure(app.getToken({ rejected: stored.accessToken }))).code).toBe('IDP_UNAVAILABLE');
      await waitForEvent(events, 'refreshFailed', 1, 5_000);
      await expectRetrying(app, 'IDP_UNAVAILABLE');
      expect((await app.getToken()).accessToken).toBe(stored.accessToken);
      await faults.setReachable(true);
      await waitForEvent(events, 'tokenRefreshed', 1, RETRY.maxDelayMs + 4_000);
      expect((await world.idp.introspect((await app.getToken()).accessToken)).active).toBe(true);
    },
  );
});

// ---- sign-in -------------------------------------------------------------------------------------------------

interface LoginRow {
  readonly name: string;
  readonly apply: () => void | Promise<void>;
  readonly undo?: () => Promise<void>;
  /** Where it fails: starting the sign-in (discovery) or handing the redirect back (the code exchange). */
  readonly at: 'start' | 'callback';
  readonly code: string;
  readonly message: RegExp;
  /** Token-endpoint requests the failed exchange may make (a code is never resent after a lost answer). */
  readonly exchanges?: number;
}

const LOGIN_ROWS: readonly LoginRow[] = [
  // Discovery and the key set first: a fresh daemon has neither cached.
  {
    name: 'discovery 503',
    apply: () => faults.setFault(DISCOVERY, { kind: 'status', status: 503 }),
    at: 'start',
    code: 'IDP_UNAVAILABLE',
    message: /discovery/,
  },
  {
    name: 'key set (JWKS) 503',
    apply: () => faults.setFault(JWKS, { kind: 'status', status: 503 }),
    at: 'callback',
    code: 'IDP_ERROR',
    message: /key set \(jwks_uri\) could not be used: Expected 200 OK/,
  },
  {
    name: 'token endpoint: port closed',
    apply: () => faults.setReachable(false),
    undo: () => faults.setReachable(true),
    at: 'callback',
    code: 'IDP_UNAVAILABLE',
    message: /ECONNREFUSED/,
    exchanges: 0,
  },
  {
    name: 'token endpoint 503',
    apply: () => faults.setFault(TOKEN, { kind: 'status', status: 503 }),
    at: 'callback',
    code: 'IDP_UNAVAILABLE',
    message: /503/,
    exchanges: 2,
  },
  {
    name: 'token endpoint stalls beyond httpTimeoutSeconds',
    apply: () => faults.setFault(TOKEN, { kind: 'stall', ms: 5_000 }),
    at: 'callback',
    code: 'IDP_UNAVAILABLE',
    message: /ETIMEDOUT|timed out/i,
    exchanges: 1,
  },
  {
    name: 'token endpoint: malformed JSON',
    apply: () => faults.setFault(TOKEN, tokenBody('{"access_token":')),
    at: 'callback',
    code: 'IDP_ERROR',
    message: /body/,
    exchanges: 1,
  },
  {
    name: 'token endpoint: no ID token',
    apply: () => faults.setFault(TOKEN, tokenBody({ access_token: 'at', token_type: 'Bearer', expires_in: 60 })),
    at: 'callback',
    code: 'LOGIN_FAILED',
    message: /no ID token/,
    exchanges: 1,
  },
];

describe('sign-in under provider faults', () => {
  it(
    `${LOGIN_ROWS.length} faults: each sign-in fails with a clear code and message, the profile stays logged out, the next sign-in works`,
    { timeout: 60_000 },
    async () => {
      const harness = await startRefreshBroker(world.idp, PROFILE);
      world.defer(() => harness.stop());
      const app = await client(harness, { timeoutMs: 15_000 });
      world.defer(() => app.close());
      const events = await recordEvents(app);
      const rows: string[][] = [['fault', 'fails at', 'code', 'token requests', 'message']];
      for (const row of LOGIN_ROWS) {
        const from = events.length;
        let error: BrokerError;
        let exchanges = 0;
        if (row.at === 'start') {
          await row.apply();
          error = await failure(app.request('login', { wait: false, openBrowser: false }));
        } else {
          const pending = await app.request('login', { wait: false, openBrowser: false });
          const { redirectUrl } = await world.user.signIn(pending.authorizationUrl!);
          await row.apply();
          const start = Date.now();
          error = await failure(app.callback(redirectUrl));
          exchanges = tokenEndpointRequests(world.idp, start).length;
          await waitFor(
            () => events.slice(from).some((e) => e.event === 'loginFailed'),
            5_000,
            () => `${row.name}: loginFailed`,
          );
          expect(events.slice(from).find((e) => e.event === 'loginFailed')!.data, row.name).toMatchObject({ code: row.code });
          if (row.exchanges !== undefined) expect(exchanges, row.name).toBe(row.exchanges);
        }
        expect(error.code, row.name).toBe(row.code);
        expect(error.message, row.name).toMatch(row.message);
        const status = await profileStatus(app);
        expect(status.state, row.name).toBe('logged-out');
        expect(status.loginStartedAt, row.name).toBeUndefined(); // the failed sign-in is over, not left pending
        expect((await failure(app.getToken())).code, row.name).toBe('LOGIN_REQUIRED');
        if (row.undo === undefined) faults.clearFaults();
        else await row.undo();
        rows.push([row.name, row.at, error.code, String(exchanges), error.message.slice(0, 110)]);
      }
      // The provider is healthy again: the next sign-in goes through.
      await signIn(harness, world.user, app);
      expect((await world.idp.introspect((await app.getToken()).accessToken)).active).toBe(true);
      figures.push(table('[provider-faults] sign-in under faults:', rows));
    },
  );
});

// ---- signing keys --------------------------------------------------------------------------------------------

describe('signing-key (JWKS) rotation', () => {
  it(
    'a new kid right after a key-set fetch: the key set is fetched again and refreshes go on (rollover, then the old key retired)',
    { timeout: 40_000 },
    async () => {
      world.idp.setAccessTokenTtl(5);
      const { app, events } = await signedInBroker();
      const jwksFetches = () => world.idp.requests.filter((r) => r.path === '/jwks').length;
      const fetched = jwksFetches();
      expect(fetched).toBeGreaterThanOrEqual(1); // the sign-in's ID token check

      // Within jose's 30-s cooldown after that fetch: it would not refetch by itself.
      const kid = await world.idp.rotateSigningKey({ keepOld: true });
      await waitForEvent(events, 'tokenRefreshed', 1, 10_000);
      expect(jwksFetches()).toBe(fetched + 1);
      expect(world.idp.signingKids[0]).toBe(kid);

      await world.idp.rotateSigningKey({ keepOld: false }); // the old keys are gone from the JWKS
      await waitForEvent(events, 'tokenRefreshed', 2, 10_000);
      expect(jwksFetches()).toBe(fetched + 2);
      expect(await profileStatus(app)).toMatchObject({ state: 'active', lastRefresh: { ok: true } });
      expect(events.some((e) => e.event === 'refreshFailed' || e.event === 'loginRequired')).toBe(false);
      expect((await world.idp.introspect((await app.getToken()).accessToken)).active).toBe(true);
      figures.push(`[provider-faults] JWKS rotation twice within 30 s of a key-set fetch: 2 refetches, 0 failed refreshes`);
    },
  );

  it(
    'the key set unreachable while keys and refresh tokens rotate: the refresh is retried, the rotated refresh token kept, nothing lost',
    { timeout: 40_000 },
    async () => {
      world.idp.setAccessTokenTtl(5);
      world.idp.setRotation(true);
      const { harness, app, events } = await signedInBroker();
      const errorsBefore = world.idp.counts.tokenEndpointErrors;
      const refreshTokenBefore = (await storedEntry(harness))!['refreshToken'] as string;
      const tokenBefore = await app.getToken({ minValidSeconds: 0 });
      faults.setFault(JWKS, { kind: 'status', status: 503 });
      await world.idp.rotateSigningKey({ keepOld: true });

      const failed = await waitForEvent(events, 'refreshFailed', 1, 10_000);
      expect(failed.data).toMatchObject({ code: 'IDP_ERROR' });
      await expectRetrying(app, 'IDP_ERROR');
      // The IdP rotated the refresh token in that answer: the keychain holds the new one, which the IdP honours.
      const kept = (await storedEntry(harness))!['refreshToken'] as string;
      expect(kept).not.toBe(refreshTokenBefore);
      expect((await world.idp.introspect(kept)).active).toBe(true);
      expect((await world.idp.introspect(refreshTokenBefore)).active).toBe(false);
      expect(harness.daemon.output()).toMatch(/the rotated refresh token was kept for the next attempt/);
      // The unverified answer's access token is not handed out; the one in use still is, while it lives.
      const served = await app.getToken({ minValidSeconds: 0 }).catch((error: unknown) => error as BrokerError);
      if (served instanceof BrokerError) {
        // The 5-second token ran out meanwhile: no token at all rather than the unverified one.
        expect(served.code).toBe('IDP_UNAVAILABLE');
        expect(Date.now()).toBeGreaterThanOrEqual(tokenBefore.expiresAt);
      } else {
        expect(served.accessToken).toBe(tokenBefore.accessToken);
        expect(served.expiresAt).toBe(tokenBefore.expiresAt);
      }

      faults.clearFaults();
      await waitForEvent(events, 'tokenRefreshed', 1, RETRY.maxDelayMs + 4_000);
      expect(await profileStatus(app)).toMatchObject({ state: 'active', lastRefresh: { ok: true } });
      expect((await world.idp.introspect((await app.getToken()).accessToken)).active).toBe(true);
      expect(world.idp.counts.tokenEndpointErrors).toBe(errorsBefore); // not one invalid_grant
      expect(events.some((e) => e.event === 'loginRequired')).toBe(false);
    },
  );
});

// ---- a lost answer -------------------------------------------------------------------------------------------

describe('a refresh whose answer is lost on the way back', () => {
  it.each([
    { rotation: false, outcome: 'the next attempt works with the same refresh token' },
    { rotation: true, outcome: 'the refresh token was spent by the lost answer: LOGIN_REQUIRED (invalid_grant), cleanly, no retry loop' },
  ])('rotation $rotation: $outcome', { timeout: 30_000 }, async ({ rotation }) => {
    world.idp.setRotation(rotation);
    const { harness, app, events } = await signedInBroker();
    const before = await app.getToken({ minValidSeconds: 0 });
    const grants = world.idp.counts.refreshToken;
    // One answer lost: the IdP handles the refresh, the daemon sees the connection reset.
    faults.setFault(TOKEN, { kind: 'forward', loseAnswer: true, onAnswer: () => faults.setFault(TOKEN, null) });
    const answer = await app.getToken({ rejected: before.accessToken }).catch((error: unknown) => error as BrokerError);
    await waitFor(
      () => count(events, 'tokenRefreshed') + count(events, 'loginRequired') >= 1,
      8_000,
      () => 'the next attempt',
    );
    // Never resent within the request (the refresh token may be spent): the next attempt is the session's.
    expect(world.idp.counts.refreshToken - grants).toBe(2);
    const failed = events.find((e) => e.event === 'refreshFailed')!;
    expect(failed.data).toMatchObject({ code: 'IDP_UNAVAILABLE' });
    if (!rotation) {
      expect(answer).not.toBeInstanceOf(BrokerError);
      expect((await world.idp.introspect((await app.getToken()).accessToken)).active).toBe(true);
      expect(await profileStatus(app)).toMatchObject({ state: 'active', lastRefresh: { ok: true } });
    } else {
      expect(answer).toMatchObject({ code: 'LOGIN_REQUIRED' });
      // login-required, or already logging in again: the app that asked opened the browser (reloginBrowser on-demand).
      const status = await profileStatus(app);
      expect(status).toMatchObject({ reason: 'invalid_grant', lastRefresh: { ok: false, code: 'LOGIN_REQUIRED' } });
      expect(['login-required', 'logging-in']).toContain(status.state);
      expect(await storedEntry(harness)).toBeUndefined();
      expect((await failure(app.getToken())).code).toBe('LOGIN_REQUIRED');
      await sleep(RETRY.maxDelayMs);
      expect(world.idp.counts.refreshToken - grants).toBe(2); // nothing more: a permanent failure is not retried
    }
  });
});

// ---- clock skew ----------------------------------------------------------------------------------------------

/** A module preloaded into the daemon (NODE_OPTIONS=--import) that moves its wall clock by a fixed offset. */
function skewModule(): string {
  const file = path.join(tempDir('tb-skew-'), 'skew-clock.mjs');
  fs.writeFileSync(
    file,
    `const skew = Number(process.env.TOKENBROKER_TEST_CLOCK_SKEW_MS ?? 0);
const RealDate = Date;
class SkewedDate extends RealDate {
  constructor(...args) { if (args.length === 0) super(RealDate.now() + skew); else super(...args); }
  static now() { return RealDate.now() + skew; }
}
globalThis.Date = SkewedDate;
`,
  );
  return file;
}

describe('clock skew between the daemon and the IdP', () => {
  it(
    "the expiry the daemon counts stays within the IdP's for skews the ID-token checks accept; beyond them sign-in fails with a clear error",
    { timeout: 60_000 },
    async () => {
      world.idp.setAccessTokenTtl(5);
      const preload = skewModule();
      const env = (skewSeconds: number) => ({ NODE_OPTIONS: `--import=${preload}`, TOKENBROKER_TEST_CLOCK_SKEW_MS: String(skewSeconds * 1000) });
      const working = [-55, 0, 55, 300];
      const daemons: Array<{ skew: number; signed: Signed }> = [];
      for (const skew of working) daemons.push({ skew, signed: await signedInBroker({}, env(skew)) });
      for (const { skew, signed } of daemons) {
        const logged = signed.harness.daemon.logs().at(-1)!;
        expect(Math.abs(Date.parse(String(logged['time'])) - Date.now() - skew * 1000)).toBeLessThan(5_000); // the skew is real
      }

      // Every token served over two refresh cycles: its expiry, moved back to the IdP's clock, against the IdP's exp.
      const margins = new Map<number, number[]>(working.map((s) => [s, []]));
      const seen = new Set<string>();
      const until = Date.now() + 9_000;
      while (Date.now() < until) {
        for (const { skew, signed } of daemons) {
          const token = await signed.app.getToken({ minValidSeconds: 0 });
          if (seen.has(token.accessToken)) continue;
          seen.add(token.accessToken);
          const introspected = await world.idp.introspect(token.accessToken);
          expect(introspected.active, `skew ${skew} s: a token the IdP calls inactive was served`).toBe(true);
          margins.get(skew)!.push(introspected.exp! * 1000 - (token.expiresAt - skew * 1000));
        }
        await sleep(250);
      }
      const rows: string[][] = [['daemon clock vs IdP', 'tokens', 'IdP exp − daemon expiry (ms), min … max', 'refreshes']];
      for (const { skew, signed } of daemons) {
        const m = margins.get(skew)!;
        expect(m.length, `skew ${skew}`).toBeGreaterThanOrEqual(3); // the first token and at least two refreshes
        for (const margin of m) expect(margin, `skew ${skew} s`).toBeGreaterThanOrEqual(0);
        expect(count(signed.events, 'refreshFailed'), `skew ${skew} s`).toBe(0);
        rows.push([
          `${skew > 0 ? '+' : ''}${skew} s`,
          String(m.length),
          `${Math.min(...m)} … ${Math.max(...m)}`,
          String(count(signed.events, 'tokenRefreshed')),
        ]);
      }

      // Beyond the bound: a clock more than 60 s behind sees the ID token issued in the future; one more than the
      // ID token's lifetime (1 h here) + 60 s ahead sees it expired. Sign-in fails and says which claim.
      for (const [skew, claim] of [
        [-90, 'iat'],
        [3_700, 'exp'],
      ] as const) {
        const harness = await startRefreshBroker(world.idp, PROFILE, { env: env(skew) });
        world.defer(() => harness.stop());
        const app = await client(harness, { timeoutMs: 15_000 });
        world.defer(() => app.close());
        const pending = await app.request('login', { wait: false, openBrowser: false });
        const { redirectUrl } = await world.user.signIn(pending.authorizationUrl!);
        const error = await failure(app.callback(redirectUrl));
        expect(error.code).toBe('LOGIN_FAILED');
        expect(error.message).toContain(`"${claim}"`);
        expect((await profileStatus(app)).state).toBe('logged-out');
        rows.push([`${skew > 0 ? '+' : ''}${skew} s`, '0', `sign-in refused: ${error.message}`, '–']);
      }
      figures.push(table('[provider-faults] clock skew (access tokens of 5 s; the daemon counts from expires_in, anchored at its own send time):', rows));
    },
  );
});
