/**
 * When to refresh: pure functions, so the timing rules are tested without clocks.
 */
import { backoffDelay } from '../oauth/index.js';
import type { RefreshConfig } from '../config.js';

/** Timers longer than this overflow Node's 32-bit millisecond delay; we re-arm instead. */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * The planned refresh time of a token that was issued at `issuedAt` and expires at `expiresAt`:
 * `leadSeconds` before expiry, but never more than a third of the lifetime (so 5-second tokens work),
 * minus up to `jitterSeconds` (never more than a tenth of the lifetime) so profiles spread out.
 */
export function plannedRefreshAt(issuedAt: number, expiresAt: number, refresh: RefreshConfig, random: () => number = Math.random): number {
  const lifetime = Math.max(0, expiresAt - issuedAt);
  const lead = Math.min(refresh.leadSeconds * 1000, lifetime / 3);
  const jitter = random() * Math.min(refresh.jitterSeconds * 1000, lifetime / 10);
  return Math.round(expiresAt - lead - jitter);
}

/** When to try again after `failures` consecutive transient failures; the provider's Retry-After wins if longer. */
export function nextAttemptAt(now: number, failures: number, refresh: RefreshConfig, retryAfterMs?: number, random: () => number = Math.random): number {
  const { baseDelayMs, maxDelayMs } = refresh.retry;
  const backoff = backoffDelay(failures, baseDelayMs, maxDelayMs, random);
  const delay = retryAfterMs === undefined ? backoff : Math.min(Math.max(backoff, retryAfterMs), maxDelayMs);
  return now + delay;
}
