/**
 * minValidSeconds, honestly (daemon/session/schedule.ts `minValidMs`, `needsRefresh`): an app's explicit value is
 * honoured up to the token's whole (conservative) lifetime minus a small margin; a token issued within that margin
 * is never refreshed for it (no refresh storm); the default threshold sits below the timer's lead. Then the same
 * rules through a Session on a fake clock.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RefreshConfig } from '../../daemon/config.js';
import { minValidMarginMs, minValidMs, needsRefresh, plannedRefreshAt } from '../../daemon/session/schedule.js';
import { signedInTokens, startSession, type SessionHarness } from '../support/session-fakes.js';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const T = 1_800_000_000_000;
const refresh: RefreshConfig = { leadSeconds: 60, jitterSeconds: 5, minValidSeconds: 30, retry: { limit: 3, baseDelayMs: 1_000, maxDelayMs: 300_000 } };

describe('minValidMs and needsRefresh (pure)', () => {
  it('an app asking for 20 minutes of a 30-minute token gets 20 minutes: one with 15 minutes left is refreshed first', () => {
    expect(minValidMs(T, T + 30 * MINUTE, refresh, 20 * 60)).toBe(20 * MINUTE);
    expect(needsRefresh(T + 15 * MINUTE, T, T + 30 * MINUTE, refresh, 20 * 60)).toBe(true);
    expect(needsRefresh(T + 9 * MINUTE, T, T + 30 * MINUTE, refresh, 20 * 60)).toBe(false); // 21 min left
    expect(needsRefresh(T + 10 * MINUTE, T, T + 30 * MINUTE, refresh, 20 * 60)).toBe(false); // exactly 20 min left
    expect(needsRefresh(T + 10 * MINUTE + 1, T, T + 30 * MINUTE, refresh, 20 * 60)).toBe(true);
  });

  it('more than the token lives is honoured up to the lifetime minus the margin (5 s, a tenth of short lifetimes)', () => {
    expect(minValidMarginMs(T, T + 30 * MINUTE)).toBe(5 * SECOND);
    expect(minValidMarginMs(T, T + 10 * SECOND)).toBe(1 * SECOND);
    expect(minValidMs(T, T + 30 * MINUTE, refresh, 3600)).toBe(30 * MINUTE - 5 * SECOND);
    expect(minValidMs(T, T + 10 * SECOND, refresh, 3600)).toBe(9 * SECOND);
  });

  it('a token issued moments ago is not refreshed for minValidSeconds, however much is asked', () => {
    expect(needsRefresh(T + 500, T, T + 10 * SECOND, refresh, 3600)).toBe(false);
    expect(needsRefresh(T + 4 * SECOND, T, T + 30 * MINUTE, refresh, 3600)).toBe(false);
    // Past the margin it is refreshed again (and the new token is served as it is).
    expect(needsRefresh(T + 1_500, T, T + 10 * SECOND, refresh, 3600)).toBe(true);
  });

  it('an expired token always needs a refresh', () => {
    expect(needsRefresh(T + 10 * SECOND, T, T + 10 * SECOND, refresh, 0)).toBe(true);
    expect(needsRefresh(T + 100, T, T + 100, refresh)).toBe(true);
  });

  it('the default threshold sits below the timer lead for every lifetime (the timer does the work)', () => {
    for (const lifetime of [3 * SECOND, 10 * SECOND, 30 * SECOND, MINUTE, 5 * MINUTE, 30 * MINUTE, 24 * 60 * MINUTE]) {
      // The latest the timer fires: no jitter.
      const timerAt = plannedRefreshAt(T, T + lifetime, refresh, () => 0);
      const lead = T + lifetime - timerAt;
      const threshold = minValidMs(T, T + lifetime, refresh);
      expect(threshold, `lifetime ${lifetime} ms`).toBeLessThanOrEqual(lead / 2 + 1); // plannedRefreshAt rounds to the ms
      expect(threshold, `lifetime ${lifetime} ms`).toBeGreaterThan(0);
    }
    expect(minValidMs(T, T + 30 * MINUTE, refresh)).toBe(30 * SECOND); // the profile's value when the token lives long
  });
});

describe('minValidSeconds through a Session (fake clock)', () => {
  let harness: SessionHarness | undefined;
  beforeEach(() => {
    vi.useFakeTimers({ now: T });
  });
  afterEach(() => {
    harness?.session.dispose();
    harness = undefined;
    vi.useRealTimers();
  });

  it('20 minutes asked of a 30-minute token with 15 minutes left: refreshed, and the answer has ≥ 20 minutes', async () => {
    harness = await startSession({ tokens: signedInTokens(30 * MINUTE) });
    const h = harness;
    h.provider.answer = { kind: 'ok', expiresIn: 30 * 60 };
    await vi.advanceTimersByTimeAsync(15 * MINUTE);
    const token = await h.getToken({ minValidSeconds: 20 * 60 });
    expect(h.provider.refreshes()).toHaveLength(1);
    expect(token.accessToken).toBe('at-1');
    expect(token.expiresAt - Date.now()).toBeGreaterThanOrEqual(20 * MINUTE);
  });

  it('an app asking for an hour of 10-second tokens continuously: at most one refresh per margin, never per request', async () => {
    harness = await startSession({ tokens: signedInTokens(10 * SECOND) });
    const h = harness;
    h.provider.answer = { kind: 'ok', expiresIn: 10 };
    let answers = 0;
    for (let i = 0; i < 200; i++) {
      const token = await h.getToken({ minValidSeconds: 3600 });
      expect(token.expiresAt).toBeGreaterThan(Date.now());
      answers++;
      await vi.advanceTimersByTimeAsync(50);
    }
    // 10 s of requests every 50 ms: 200 answers, and refreshes bounded by one per margin (≈ 0.9 s here).
    expect(answers).toBe(200);
    expect(h.provider.refreshes().length).toBeLessThanOrEqual(12);
    expect(h.provider.refreshes().length).toBeGreaterThanOrEqual(5);
  });

  it('apps asking with the default threshold leave the refreshing to the timer (one refresh per lifetime)', async () => {
    harness = await startSession({ tokens: signedInTokens(10 * SECOND) });
    const h = harness;
    h.provider.answer = { kind: 'ok', expiresIn: 10 };
    for (let i = 0; i < 600; i++) {
      const token = await h.getToken();
      expect(token.expiresAt).toBeGreaterThan(Date.now());
      await vi.advanceTimersByTimeAsync(50);
    }
    // 30 s; the fake's 10-s tokens count as ≈ 9 s (conservative expiry), refreshed by the timer ≈ 3 s early.
    const refreshes = h.provider.refreshes().length;
    expect(refreshes).toBeGreaterThanOrEqual(3);
    expect(refreshes).toBeLessThanOrEqual(6);
    // Every refresh was the timer's: none logged as on demand.
    expect(h.logs.filter((l) => l['why'] === 'on demand' && l['msg'] === 'access token refreshed')).toEqual([]);
  });
});
