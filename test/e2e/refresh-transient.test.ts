/**
 * Transient provider failures, end to end: the fault proxy in front of the test IdP answers 503, drops
 * connections, stalls, rate-limits with Retry-After, or sends a page that is not a token response. The
 * broker must back off (fewer requests as the outage goes on), keep serving a still-valid token, answer
 * IDP_UNAVAILABLE with retryAt once it has expired, and recover by itself when the faults clear.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type BrokerClient, BrokerError } from '../../client/index.js';
import type { BrokerHarness } from '../support/broker.js';
import type { FaultProxy } from '../support/fault-proxy.js';
import { profileStatus, ratePerMinute, recordEvents, sleep, tokenEndpointRequests, useRefreshWorld, waitFor, waitForEvent } from '../support/refresh-e2e.js';

const TTL_SECONDS = 6;
const TOKEN_ENDPOINT = /^\/token$/;
/** got retries once per attempt (2 HTTP requests), then the session backs off 0.3 s → 4 s. */
const RETRY = { limit: 1, baseDelayMs: 300, maxDelayMs: 4_000 };

const world = useRefreshWorld({ accessTokenTtl: TTL_SECONDS, frontProxy: true });
let faults: FaultProxy;

beforeAll(() => {
  faults = world.idp.faults!;
});
// Runs before the world's clean-ups ("after" hooks run as a stack).
afterEach(() => {
  faults.clearFaults();
});

async function signedInBroker(profile: Record<string, unknown> = {}): Promise<{ harness: BrokerHarness; app: BrokerClient }> {
  // token.get waits ≤ 1 s for a refresh
  return world.signedIn({ httpTimeoutSeconds: 1, refresh: { retry: RETRY }, ...profile }, { client: { timeoutMs: 1_500 } });
}

async function tokenError(app: BrokerClient): Promise<BrokerError> {
  try {
    await app.getToken();
  } catch (error) {
    return error as BrokerError;
  }
  throw new Error('token.get succeeded');
}

describe('daemon (e2e): transient failures', () => {
  it('503s: backoff at the IdP, the old token served while valid, IDP_UNAVAILABLE with retryAt once expired, recovery without the user', async () => {
    const { app } = await signedInBroker();
    const events = await recordEvents(app);
    const old = await app.getToken({ minValidSeconds: 0 });
    const outageStart = Date.now();
    faults.setFault(TOKEN_ENDPOINT, { kind: 'status', status: 503, body: 'maintenance' });

    // The timer's refresh fails; apps keep getting the valid token.
    const failed = await waitForEvent(events, 'refreshFailed', 1, 10_000);
    expect(failed.data).toMatchObject({ profile: 'main', code: 'IDP_UNAVAILABLE', retryAt: expect.any(Number) as unknown });
    const served = await app.getToken();
    expect(served.accessToken).toBe(old.accessToken);
    expect(await world.idp.introspect(served.accessToken)).toMatchObject({ active: true });
    expect(await profileStatus(app)).toMatchObject({
      // active between attempts; refreshing when the next backoff attempt is already under way (a busy machine)
      state: expect.stringMatching(/^(active|refreshing)$/) as unknown,
      consecutiveFailures: expect.any(Number) as unknown,
      lastRefresh: { ok: false, code: 'IDP_UNAVAILABLE' },
    });

    // Past expiry: IDP_UNAVAILABLE with when the next attempt is due; never the expired token.
    await waitFor(() => Date.now() > old.expiresAt + 200, 10_000);
    const error = await tokenError(app);
    expect(error).toBeInstanceOf(BrokerError);
    expect(error.code).toBe('IDP_UNAVAILABLE');
    expect(error.retryAt).toBeGreaterThanOrEqual(Date.now() - 1_500);
    expect(error.retryAt).toBeLessThanOrEqual(Date.now() + RETRY.maxDelayMs + 500);

    // Keep it down for 15 s from the first failed request, apps asking every 100 ms.
    const firstFailure = tokenEndpointRequests(world.idp, outageStart)[0]!.at;
    const asking = (async () => {
      while (Date.now() < firstFailure + 15_000) {
        await app.getToken().catch(() => undefined);
        await sleep(100);
      }
    })();
    await asking;
    const outageEnd = Date.now();
    const times = tokenEndpointRequests(world.idp, outageStart).map((r) => r.at);
    const rates = ratePerMinute(times, firstFailure, firstFailure + 15_000, 5_000);
    console.log(
      `[transient] 503 outage of ${((outageEnd - outageStart) / 1000).toFixed(1)} s, apps asking every 100 ms: ${times.length} token requests; ` +
        `requests per minute in 5-s windows from the first failure: ${rates.join(', ')}`,
    );
    // Bounded: with these settings at most ~20 requests in 15 s, whatever the apps do …
    expect(times.length).toBeGreaterThanOrEqual(6);
    expect(times.length).toBeLessThanOrEqual(24);
    // … and decreasing: the last window sees fewer than the first, and the gaps between attempts grow to the cap.
    expect(rates.at(-1)!).toBeLessThan(rates[0]!);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(Math.max(...gaps.slice(-3))).toBeGreaterThanOrEqual(RETRY.maxDelayMs / 2);

    // The provider is back: the next slot refreshes, no app and no user needed.
    const refreshedBefore = events.filter((e) => e.event === 'tokenRefreshed').length;
    faults.clearFaults();
    await waitForEvent(events, 'tokenRefreshed', refreshedBefore + 1, RETRY.maxDelayMs + 3_000);
    const fresh = await app.getToken();
    expect(fresh.accessToken).not.toBe(old.accessToken);
    expect(await world.idp.introspect(fresh.accessToken)).toMatchObject({ active: true });
    const status = await profileStatus(app);
    expect(status).toMatchObject({ state: 'active', lastRefresh: { ok: true } });
    expect(status.consecutiveFailures).toBeUndefined();
    expect(events.some((e) => e.event === 'loginRequired')).toBe(false);
  });

  it('dropped connections and stalls are transient too; the session survives them', async () => {
    const { app } = await signedInBroker();
    const events = await recordEvents(app);
    const start = Date.now();
    faults.setFault(TOKEN_ENDPOINT, { kind: 'drop' });
    await waitForEvent(events, 'refreshFailed', 1, 10_000);
    faults.setFault(TOKEN_ENDPOINT, { kind: 'stall', ms: 10_000 }); // longer than httpTimeoutSeconds (1 s)
    const failures = events.filter((e) => e.event === 'refreshFailed').length;
    await waitForEvent(events, 'refreshFailed', failures + 1, 10_000);
    const faulted = tokenEndpointRequests(world.idp, start);
    // One request per attempt: a token request whose answer was lost is not resent in-request (the
    // refresh token may already be spent); the session's backoff schedules the next attempt.
    expect(faulted.length).toBe(events.filter((e) => e.event === 'refreshFailed').length);
    expect(faulted.every((r) => r.status === undefined)).toBe(true); // no answer at all
    expect(events.filter((e) => e.event === 'refreshFailed').every((e) => (e.data as { code: string }).code === 'IDP_UNAVAILABLE')).toBe(true);

    faults.clearFaults();
    await waitForEvent(events, 'tokenRefreshed', 1, RETRY.maxDelayMs + 5_000);
    expect(await world.idp.introspect((await app.getToken()).accessToken)).toMatchObject({ active: true });
    expect(events.some((e) => e.event === 'loginRequired')).toBe(false);
  });

  it('429 with Retry-After: the next request waits as long as the provider asked', async () => {
    const { app } = await signedInBroker({ refresh: { retry: { ...RETRY, maxDelayMs: 2_000 } } });
    const events = await recordEvents(app);
    const start = Date.now();
    // 3 s is more than maxDelayMs (2 s here): got does not wait in-request; the session schedules it.
    faults.setFault(TOKEN_ENDPOINT, {
      kind: 'status',
      status: 429,
      body: '{"error":"slow_down"}',
      headers: { 'retry-after': '3', 'content-type': 'application/json' },
    });
    await waitForEvent(events, 'refreshFailed', 3, 20_000);
    const failedEvents = events.filter((e) => e.event === 'refreshFailed');
    faults.clearFaults();
    const times = tokenEndpointRequests(world.idp, start).map((r) => r.at);
    const gaps = times.slice(1, 3).map((t, i) => t - times[i]!);
    console.log(`[transient] 429 Retry-After: 3 → gaps between requests ${gaps.join(' ms, ')} ms`);
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(2_900);
    for (const [i, event] of failedEvents.entries()) expect((event.data as { retryAt: number }).retryAt).toBeGreaterThanOrEqual(times[i]! + 2_900);
    await waitForEvent(events, 'tokenRefreshed', 1, 6_000);
  }, 40_000);

  it('a 200 that is not a token response (a captive portal) is retried, never a sign-out', async () => {
    const { harness, app } = await signedInBroker();
    const events = await recordEvents(app);
    faults.setFault(TOKEN_ENDPOINT, { kind: 'body', status: 200, body: '<html>Sign in to the hotel Wi-Fi</html>', contentType: 'text/html' });
    const failed = await waitForEvent(events, 'refreshFailed', 1, 10_000);
    expect(failed.data).toMatchObject({ code: 'IDP_ERROR', retryAt: expect.any(Number) as unknown });
    expect(await profileStatus(app)).toMatchObject({ state: 'active' });
    faults.clearFaults();
    await waitForEvent(events, 'tokenRefreshed', 1, RETRY.maxDelayMs + 3_000);
    expect(events.some((e) => e.event === 'loginRequired')).toBe(false);
    expect(harness.daemon.output()).not.toMatch(/refresh failed permanently/);
  });
});
