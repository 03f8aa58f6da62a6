/**
 * The refresh engine's timing rules (daemon/session/schedule.ts): pure functions, no clocks.
 */
import { describe, expect, it } from 'vitest';
import type { RefreshConfig } from '../../daemon/config.js';
import { conservativeExpiry, MAX_RETRY_AFTER_MS, minValidMs, nextAttemptAt, plannedRefreshAt } from '../../daemon/session/schedule.js';

const refresh = (overrides: Partial<RefreshConfig> = {}): RefreshConfig => ({
  leadSeconds: 60,
  jitterSeconds: 5,
  minValidSeconds: 30,
  retry: { limit: 3, baseDelayMs: 1_000, maxDelayMs: 300_000 },
  ...overrides,
});
const T = 1_800_000_000_000;
const lowest = () => 0;
const highest = () => 0.999_999;

describe('plannedRefreshAt: lead before expiry, minus jitter', () => {
  it('an hour-long token refreshes 60 s before expiry, up to 5 s earlier', () => {
    const expiresAt = T + 3_600_000;
    expect(plannedRefreshAt(T, expiresAt, refresh(), lowest)).toBe(expiresAt - 60_000);
    expect(plannedRefreshAt(T, expiresAt, refresh(), highest)).toBe(expiresAt - 65_000);
  });

  it('a 5-second token: the lead is capped at a third of its life, the jitter at a tenth', () => {
    const expiresAt = T + 5_000;
    expect(plannedRefreshAt(T, expiresAt, refresh(), lowest)).toBe(Math.round(expiresAt - 5_000 / 3));
    expect(plannedRefreshAt(T, expiresAt, refresh(), highest)).toBe(Math.round(expiresAt - 5_000 / 3 - 500));
    // Always in the token's life, never at its very end.
    for (let i = 0; i < 100; i++) {
      const at = plannedRefreshAt(T, expiresAt, refresh());
      expect(at).toBeGreaterThan(T);
      expect(at).toBeLessThan(expiresAt - 1_500);
    }
  });

  it('lead 0 and jitter 0 mean exactly at expiry', () => {
    expect(plannedRefreshAt(T, T + 10_000, refresh({ leadSeconds: 0, jitterSeconds: 0 }))).toBe(T + 10_000);
  });

  it('jitter spreads profiles that refresh at the same moment', () => {
    const times = new Set(Array.from({ length: 50 }, () => plannedRefreshAt(T, T + 3_600_000, refresh())));
    expect(times.size).toBeGreaterThan(40);
  });
});

describe('minValidMs: how much validity token.get insists on', () => {
  it("is the app's minValidSeconds when the token lives long enough", () => {
    expect(minValidMs(T, T + 3_600_000, refresh(), 30)).toBe(30_000);
  });

  it('honours an explicit value up to the lifetime minus a small margin (no cap at half; test/unit/min-valid.test.ts)', () => {
    expect(minValidMs(T, T + 1_800_000, refresh(), 1_200)).toBe(1_200_000);
    expect(minValidMs(T, T + 5_000, refresh(), 30)).toBe(4_500);
  });
});

describe('conservativeExpiry: the broker errs towards early', () => {
  it('anchors expires_in at the time the request was sent, and takes a second off for exp granularity', () => {
    // sent at T, answered 300 ms later with expires_in 3600 (the endpoint reports receipt + 3600 s)
    expect(conservativeExpiry(T + 300 + 3_600_000, T, T + 300)).toBe(T + 3_600_000 - 1_000);
  });

  it('takes at most a fifth off a short lifetime', () => {
    expect(conservativeExpiry(T + 2_000, T, T)).toBe(T + 1_600);
  });
});

describe('nextAttemptAt: capped exponential backoff with jitter', () => {
  it('doubles per consecutive failure, half fixed and half random, up to maxDelayMs', () => {
    const config = refresh({ retry: { limit: 3, baseDelayMs: 1_000, maxDelayMs: 60_000 } });
    const delays = [1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => [
      nextAttemptAt(T, n, config, undefined, lowest) - T,
      nextAttemptAt(T, n, config, undefined, highest) - T,
    ]);
    expect(delays.map(([low]) => low)).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
    expect(delays.map(([, high]) => Math.round(high! / 1000))).toEqual([1, 2, 4, 8, 16, 32, 60, 60, 60]);
    // Never zero, never beyond the cap, never shorter than the previous step's shortest.
    for (let n = 1; n < 30; n++) {
      const delay = nextAttemptAt(T, n, config) - T;
      expect(delay).toBeGreaterThan(0);
      expect(delay).toBeLessThanOrEqual(60_000);
    }
  });

  it("honours the provider's Retry-After when longer, even beyond maxDelayMs (RFC 9110 §10.2.3)", () => {
    const config = refresh({ retry: { limit: 3, baseDelayMs: 1_000, maxDelayMs: 60_000 } });
    expect(nextAttemptAt(T, 1, config, 120_000, lowest)).toBe(T + 120_000);
    expect(nextAttemptAt(T, 1, config, 10, lowest)).toBe(T + 500); // shorter: the backoff wins
    expect(nextAttemptAt(T, 1, config, 30 * 24 * 3_600_000, lowest)).toBe(T + MAX_RETRY_AFTER_MS); // a typo does not lock us out for a month
  });
});
