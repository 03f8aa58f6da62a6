/**
 * The refresh engine of one Session, on a fake clock (vitest fake timers): the timer ahead of expiry,
 * token.get's on-demand check, one refresh at a time, backoff on transient failures, and clock jumps.
 * The provider is a scripted fake token endpoint; the keychain is the in-memory store.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BrokerError } from '../../proto/index.js';
import { startClockWatch } from '../../daemon/session/clock-watch.js';
import { settle, signedInTokens, startSession, type SessionHarness } from '../support/session-fakes.js';

const T0 = Date.UTC(2030, 0, 1);
const SECOND = 1_000;
const MINUTE = 60 * SECOND;

let harness: SessionHarness | undefined;
beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  harness?.session.dispose();
  harness = undefined;
  vi.useRealTimers();
});

async function start(...args: Parameters<typeof startSession>): Promise<SessionHarness> {
  harness = await startSession(...args);
  return harness;
}

const eventsNamed = (h: SessionHarness, name: string) => h.events.filter((e) => e.event === name);

describe('session (unit): the refresh timer', () => {
  it('refreshes ahead of expiry with no app asking, and re-arms after every refresh', async () => {
    const h = await start({ tokens: signedInTokens(5 * MINUTE) });
    const next = h.session.status().nextRefreshAt!;
    // lead 60 s (less than a third of 5 min), jitter up to 30 s (the default 300 s, capped at a tenth of the lifetime)
    expect(next).toBeGreaterThanOrEqual(T0 + 5 * MINUTE - 90 * SECOND);
    expect(next).toBeLessThanOrEqual(T0 + 5 * MINUTE - 60 * SECOND);

    await vi.advanceTimersByTimeAsync(next - Date.now() - 1);
    expect(h.provider.refreshes()).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.provider.refreshes()).toHaveLength(1);
    expect(h.provider.refreshes()[0]!.at).toBe(next);
    expect(eventsNamed(h, 'tokenRefreshed')).toHaveLength(1);
    expect(JSON.stringify(h.events)).not.toContain('at-1'); // events never carry a token

    // The new token has its own timer, again ahead of its expiry.
    const status = h.session.status();
    expect(status.state).toBe('active');
    expect(status.nextRefreshAt).toBeLessThan(status.expiresAt!);
    expect(status.nextRefreshAt).toBeGreaterThan(Date.now());
    expect(status.lastRefresh).toEqual({ at: next, ok: true });

    await vi.advanceTimersByTimeAsync(30 * MINUTE);
    // 5-minute tokens for 30 more minutes: one refresh per lifetime (minus lead and jitter), never more.
    const count = h.provider.refreshes().length;
    expect(count).toBeGreaterThanOrEqual(1 + 30 / 5);
    expect(count).toBeLessThanOrEqual(1 + Math.ceil((30 * MINUTE) / (5 * MINUTE - 66 * SECOND)));
    const saved = await h.store.load('main');
    expect(saved?.accessToken.reveal()).toBe(h.provider.issued.at(-1));
  });

  it('a session restored with an expired access token refreshes at once', async () => {
    const h = await start({ tokens: signedInTokens(-MINUTE) });
    expect(h.session.state).toBe('active');
    await vi.advanceTimersByTimeAsync(0);
    expect(h.provider.refreshes()).toHaveLength(1);
  });
});

describe('session (unit): token.get', () => {
  it('answers from memory while the token has minValidSeconds left, and refreshes first when less', async () => {
    const h = await start({ profile: { refresh: { leadSeconds: 0, jitterSeconds: 0 } }, tokens: signedInTokens(5 * MINUTE) });
    await vi.advanceTimersByTimeAsync(4 * MINUTE);
    expect((await h.getToken()).accessToken).toBe('at-0'); // 60 s left ≥ 30 s
    expect(h.provider.refreshes()).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(45 * SECOND);
    expect((await h.getToken({ minValidSeconds: 10 })).accessToken).toBe('at-0'); // 15 s left ≥ 10 s
    const fresh = await h.getToken(); // 15 s left < 30 s
    expect(fresh.accessToken).toBe('at-1');
    expect(h.provider.refreshes()).toHaveLength(1);
  });

  it('tokens shorter-lived than minValidSeconds do not make every request refresh', async () => {
    // 5-second tokens, the default minValidSeconds (30): a fresh token must still be served from memory.
    const h = await start({ tokens: signedInTokens(5 * SECOND) });
    h.provider.answer = { kind: 'ok', expiresIn: 5 };
    for (let i = 0; i < 10; i++) {
      await h.getToken();
      await vi.advanceTimersByTimeAsync(100);
    }
    // First refresh once 2.5 s (half the life) remain; the refreshed token then serves the remaining requests.
    expect(h.provider.refreshes().length).toBeLessThanOrEqual(1);
    for (let i = 0; i < 50; i++) {
      await h.getToken();
      await vi.advanceTimersByTimeAsync(100);
    }
    // 6 s of requests every 100 ms: about 6 s / (refresh every ≈2 s) refreshes, not 60 — and not none:
    // each 5-s token is refreshed once less than half of it is left (at ≈ 2.5 s and ≈ 5 s).
    expect(h.provider.refreshes().length).toBeLessThanOrEqual(5);
    expect(h.provider.refreshes().length).toBeGreaterThanOrEqual(2);
  });

  it('without a refresh token the access token is served until it expires, then LOGIN_REQUIRED', async () => {
    const { refreshToken: _refreshToken, ...withoutRefresh } = signedInTokens(20 * SECOND);
    const h = await start({ tokens: withoutRefresh });
    expect(h.session.status().nextRefreshAt).toBeUndefined();
    expect((await h.getToken()).accessToken).toBe('at-0'); // 20 s left < 30 s, but nothing better exists
    await vi.advanceTimersByTimeAsync(20 * SECOND);
    await expect(h.getToken()).rejects.toMatchObject({ code: 'LOGIN_REQUIRED' });
    expect(h.session.status()).toMatchObject({ state: 'logging-in', reason: 'no_refresh_token' }); // the browser opened for the app
    expect(h.provider.requests).toHaveLength(0);
  });

  it('single flight: 250 concurrent requests on an expiring token cause one refresh, and all get the same new token', async () => {
    const h = await start({ profile: { refresh: { leadSeconds: 0, jitterSeconds: 0 } }, tokens: signedInTokens(5 * MINUTE) });
    h.provider.answer = { kind: 'ok', delayMs: 300 };
    await vi.advanceTimersByTimeAsync(5 * MINUTE - 10 * SECOND);
    const all = Array.from({ length: 250 }, () => h.getToken());
    await vi.advanceTimersByTimeAsync(400);
    const results = await Promise.all(all);
    expect(h.provider.refreshes()).toHaveLength(1);
    expect(new Set(results.map((r) => r.accessToken))).toEqual(new Set(['at-1']));
    // More arrivals after it: answered from memory.
    await Promise.all(Array.from({ length: 50 }, () => h.getToken()));
    expect(h.provider.refreshes()).toHaveLength(1);
  });

  it('the timer and an app asking at the same moment still make one refresh', async () => {
    const h = await start({ profile: { refresh: { leadSeconds: 60, jitterSeconds: 0 } }, tokens: signedInTokens(5 * MINUTE) });
    h.provider.answer = { kind: 'ok', delayMs: 200 };
    await vi.advanceTimersByTimeAsync(4 * MINUTE); // the timer fires now
    const asked = h.getToken({ minValidSeconds: 90 });
    await vi.advanceTimersByTimeAsync(300);
    expect((await asked).accessToken).toBe('at-1');
    expect(h.provider.refreshes()).toHaveLength(1);
  });
});

describe('session (unit): transient failures', () => {
  const retry = { limit: 0, baseDelayMs: 1_000, maxDelayMs: 60_000 };

  it('backs off exponentially, keeps serving the valid token, answers IDP_UNAVAILABLE with retryAt once expired, recovers by itself', async () => {
    const h = await start({ profile: { refresh: { retry, jitterSeconds: 0 } }, tokens: signedInTokens(5 * MINUTE) });
    h.provider.answer = { kind: 'status', status: 503 };
    const planned = h.session.status().nextRefreshAt!;
    await vi.advanceTimersByTimeAsync(planned - Date.now());
    expect(h.provider.refreshes()).toHaveLength(1);
    const failed = eventsNamed(h, 'refreshFailed');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.data).toMatchObject({ profile: 'main', code: 'IDP_UNAVAILABLE', retryAt: expect.any(Number) as unknown });
    expect(h.session.status()).toMatchObject({ state: 'active', consecutiveFailures: 1, lastRefresh: { ok: false, code: 'IDP_UNAVAILABLE' } });

    // Still valid: served, and asking does not add attempts beyond the schedule.
    for (let i = 0; i < 20; i++) expect((await h.getToken({ waitMs: 0 })).accessToken).toBe('at-0');

    // Past expiry: IDP_UNAVAILABLE, with when the next attempt is due.
    await vi.advanceTimersByTimeAsync(70 * SECOND);
    const attemptsBefore = h.provider.refreshes().length;
    const outcome = await settle(h.getToken({ waitMs: 0 }));
    expect(outcome.ok).toBe(false);
    const error = (outcome as { error: BrokerError }).error;
    expect(error).toBeInstanceOf(BrokerError);
    expect(error.code).toBe('IDP_UNAVAILABLE');
    expect(error.retryAt).toBe(h.session.status().nextRefreshAt);
    expect(error.retryAt).toBeGreaterThan(Date.now());
    expect(h.provider.refreshes().length).toBe(attemptsBefore);

    // Let it fail a while: the gaps grow (equal jitter: each at least the previous) up to the cap.
    await vi.advanceTimersByTimeAsync(10 * MINUTE);
    const times = h.provider.refreshes().map((r) => r.at);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    for (let i = 1; i < gaps.length; i++) {
      if (gaps[i - 1]! < retry.maxDelayMs / 2) expect(gaps[i]).toBeGreaterThanOrEqual(gaps[i - 1]!);
      expect(gaps[i]).toBeLessThanOrEqual(retry.maxDelayMs);
    }
    expect(gaps.at(-1)).toBeGreaterThanOrEqual(retry.maxDelayMs / 2);

    // The provider is back: the next slot refreshes without any app asking.
    h.provider.answer = { kind: 'ok' };
    await vi.advanceTimersByTimeAsync(retry.maxDelayMs);
    expect(eventsNamed(h, 'tokenRefreshed')).toHaveLength(1);
    expect(h.session.status().consecutiveFailures).toBeUndefined();
    expect((await h.getToken({ waitMs: 0 })).accessToken).toBe('at-1');
  });

  it('a provider down for an hour sees a bounded, decreasing request rate, however many apps ask', async () => {
    const h = await start({ tokens: signedInTokens(5 * MINUTE) }); // default retry: 1 s … 5 min
    h.provider.answer = { kind: 'network' };
    const windows: number[] = [];
    const WINDOW = 10 * MINUTE;
    for (let w = 0; w < 6; w++) {
      const before = h.provider.refreshes().length;
      for (let s = 0; s < WINDOW / SECOND; s += 1) {
        // five apps asking every second, each willing to wait 2 s
        for (let a = 0; a < 5; a++) void settle(h.getToken({ waitMs: 2_000 }));
        await vi.advanceTimersByTimeAsync(SECOND);
      }
      windows.push(h.provider.refreshes().length - before);
    }
    console.log(`[session] refresh attempts per 10 minutes during a 1-hour outage (5 apps asking every second): ${windows.join(', ')}`);
    // After the first window the cap (5 min, equal jitter: 2.5–5 min) bounds it at 4 per 10 minutes.
    expect(windows[0]).toBeLessThanOrEqual(15);
    for (const count of windows.slice(1)) expect(count).toBeLessThanOrEqual(4);
    for (let i = 1; i < windows.length; i++) expect(windows[i]).toBeLessThanOrEqual(windows[0]!);
    expect(windows.reduce((a, b) => a + b)).toBeLessThan(40);
    // And it keeps trying: the backoff doubles from 1 s in the first window, then at most 5 min apart.
    expect(windows[0]).toBeGreaterThanOrEqual(5);
    for (const count of windows.slice(1)) expect(count).toBeGreaterThanOrEqual(1);
  });

  it('a 429 Retry-After is honoured, even beyond maxDelayMs', async () => {
    const h = await start({ profile: { refresh: { retry } }, tokens: signedInTokens(5 * MINUTE) });
    h.provider.answer = { kind: 'status', status: 429, body: { error: 'slow_down' }, headers: { 'retry-after': '120' } };
    await vi.advanceTimersByTimeAsync(h.session.status().nextRefreshAt! - Date.now());
    const first = h.provider.refreshes()[0]!.at;
    expect(h.session.status().nextRefreshAt).toBeGreaterThanOrEqual(first + 120 * SECOND);
    await vi.advanceTimersByTimeAsync(119 * SECOND);
    for (let i = 0; i < 5; i++) await settle(h.getToken({ minValidSeconds: 3600, waitMs: 0 }));
    expect(h.provider.refreshes()).toHaveLength(1);
    h.provider.answer = { kind: 'ok' };
    await vi.advanceTimersByTimeAsync(2 * SECOND);
    expect(h.provider.refreshes()).toHaveLength(2);
    expect(h.provider.refreshes()[1]!.at - first).toBeGreaterThanOrEqual(120 * SECOND);
  });

  it('an answer that is not a token response (a captive portal, a proxy page) is retried, not a sign-out', async () => {
    const h = await start({ profile: { refresh: { retry } }, tokens: signedInTokens(5 * MINUTE) });
    h.provider.answer = { kind: 'garbage' };
    await vi.advanceTimersByTimeAsync(h.session.status().nextRefreshAt! - Date.now());
    expect(h.provider.refreshes()).toHaveLength(1);
    expect(h.session.status()).toMatchObject({ state: 'active', consecutiveFailures: 1, lastRefresh: { ok: false, code: 'IDP_ERROR' } });
    expect(eventsNamed(h, 'loginRequired')).toHaveLength(0);
    expect(await h.store.load('main')).toBeDefined();
    h.provider.answer = { kind: 'ok' };
    await vi.advanceTimersByTimeAsync(retry.baseDelayMs);
    expect((await h.getToken()).accessToken).toBe('at-1');
  });

  it('an app that can wait past the next slot waits for it and gets the new token', async () => {
    const h = await start({ profile: { refresh: { retry: { limit: 0, baseDelayMs: 4_000, maxDelayMs: 60_000 } } }, tokens: signedInTokens(-SECOND) });
    h.provider.answer = { kind: 'network' };
    await vi.advanceTimersByTimeAsync(0); // the restore's refresh fails; next slot in 2–4 s
    expect(h.provider.refreshes()).toHaveLength(1);
    h.provider.answer = { kind: 'ok' };
    const waiting = h.getToken({ waitMs: 10_000 });
    await vi.advanceTimersByTimeAsync(4_000);
    expect((await waiting).accessToken).toBe('at-1');
    expect(h.provider.refreshes()).toHaveLength(2);
  });
});

describe('session (unit): clock jumps', () => {
  it('after a jump past the planned refresh (a laptop waking up), the session refreshes at once', async () => {
    const h = await start({ tokens: signedInTokens(5 * MINUTE) });
    const watch = startClockWatch({ onJump: (drift) => h.session.onClockJump(drift) });
    try {
      // Asleep for an hour: the wall clock moves, timers (monotonic) do not.
      vi.setSystemTime(Date.now() + 60 * MINUTE);
      expect(h.provider.refreshes()).toHaveLength(0);
      const asked = h.getToken({ waitMs: 5_000 });
      await vi.advanceTimersByTimeAsync(0);
      expect((await asked).accessToken).toBe('at-1'); // expired: refreshed before answering
      expect(h.provider.refreshes()).toHaveLength(1);
    } finally {
      watch.stop();
    }
  });

  it('the clock watch notices the jump within one tick, and the session refreshes with no app asking', async () => {
    const h = await start({ tokens: signedInTokens(5 * MINUTE) });
    const jumps: number[] = [];
    const watch = startClockWatch({
      onJump: (drift) => {
        jumps.push(drift);
        h.session.onClockJump(drift);
      },
    });
    try {
      await vi.advanceTimersByTimeAsync(20 * SECOND);
      expect(jumps).toEqual([]); // ticks on time are no jump
      vi.setSystemTime(Date.now() + 60 * MINUTE);
      await vi.advanceTimersByTimeAsync(5 * SECOND);
      expect(jumps).toHaveLength(1);
      expect(jumps[0]).toBeGreaterThanOrEqual(60 * MINUTE - 5 * SECOND);
      expect(h.provider.refreshes()).toHaveLength(1);
      expect(h.provider.refreshes()[0]!.at).toBeLessThanOrEqual(Date.now());
      expect(eventsNamed(h, 'tokenRefreshed')).toHaveLength(1);
    } finally {
      watch.stop();
    }
  });

  it('a clock set back an hour does not stretch the token: it is still refreshed on real time', async () => {
    const h = await start({ tokens: signedInTokens(5 * MINUTE) });
    const watch = startClockWatch({ onJump: (drift) => h.session.onClockJump(drift) });
    try {
      await vi.advanceTimersByTimeAsync(MINUTE);
      vi.setSystemTime(Date.now() - 60 * MINUTE);
      await vi.advanceTimersByTimeAsync(5 * SECOND);
      // 3 min 55 s of real life left: expiresAt moved back with the clock.
      const status = h.session.status();
      expect(status.expiresAt! - Date.now()).toBeLessThanOrEqual(4 * MINUTE);
      expect(status.expiresAt! - Date.now()).toBeGreaterThan(3 * MINUTE);
      await vi.advanceTimersByTimeAsync(4 * MINUTE);
      expect(h.provider.refreshes()).toHaveLength(1);
    } finally {
      watch.stop();
    }
  });
});
