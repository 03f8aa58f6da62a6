/**
 * One refresh at a time, whoever starts it: the refresh timer that fires while an app's refresh is in
 * flight joins it instead of queueing a second grant. One Session on a fake clock (vitest fake timers),
 * the scripted token endpoint answering slowly.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { signedInTokens, startSession, type SessionHarness } from '../support/session-fakes.js';

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

describe('single flight across the timer and token.get', () => {
  it("an app's refresh is in flight when the timer fires → exactly one refresh grant, one new token", async () => {
    // No lead, no jitter: the timer fires exactly at expiry.
    harness = await startSession({ profile: { refresh: { leadSeconds: 0, jitterSeconds: 0 } }, tokens: signedInTokens(5 * MINUTE) });
    const h = harness;
    const timerAt = h.session.status().nextRefreshAt!;
    expect(timerAt).toBe(T0 + 5 * MINUTE);
    h.provider.answer = { kind: 'ok', delayMs: 20 * SECOND }; // the provider takes 20 s to answer

    // 10 s before expiry (less than minValidSeconds = 30 s left), an app asks: its refresh starts.
    await vi.advanceTimersByTimeAsync(timerAt - 10 * SECOND - Date.now());
    const app = h.getToken({ waitMs: 60 * SECOND });
    await vi.advanceTimersByTimeAsync(0);
    expect(h.provider.refreshes()).toHaveLength(1);
    expect(h.session.state).toBe('refreshing');

    // The timer fires at expiry while that refresh is still waiting for the provider.
    await vi.advanceTimersByTimeAsync(10 * SECOND);
    expect(Date.now()).toBeGreaterThanOrEqual(timerAt);
    expect(h.session.state).toBe('refreshing');

    // The provider answers; whatever was queued behind it would run now.
    await vi.advanceTimersByTimeAsync(30 * SECOND);
    const result = await app;
    expect(result.accessToken).toBe('at-1');
    expect(h.provider.refreshes()).toHaveLength(1);
    expect(h.provider.issued).toEqual(['at-1']);
    expect(h.events.filter((e) => e.event === 'tokenRefreshed')).toHaveLength(1);
    expect(h.session.status()).toMatchObject({ state: 'active', lastRefresh: { ok: true } });
    // And the next timer is for the new token, not a leftover of the old one.
    expect(h.session.status().nextRefreshAt).toBe(h.session.status().expiresAt);
  });
});
