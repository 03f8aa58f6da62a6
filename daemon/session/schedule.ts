/**
 * When to refresh, and how long a token is good for: pure functions, so the timing rules are tested
 * without clocks.
 */
import { backoffDelay } from '../oauth/index.js';
import type { RefreshConfig } from '../config.js';

/** Timers longer than this overflow Node's 32-bit millisecond delay; we re-arm instead. */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * JWT `exp` is a NumericDate in whole seconds (RFC 7519 §2), and providers usually compute it from a
 * truncated `iat`: a token said to last `expires_in` seconds may die up to a second sooner.
 */
export const EXPIRY_GRANULARITY_MS = 1_000;

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

/**
 * How much validity `token.get` insists on before answering from memory: the app's `minValidSeconds`,
 * but never more than half the token's lifetime. A provider whose tokens live shorter than what the app
 * asks could otherwise never satisfy it, and every request would refresh (a refresh storm); with the cap
 * a freshly refreshed token always satisfies the check.
 */
export function minValidMs(issuedAt: number, expiresAt: number, minValidSeconds: number): number {
  const lifetime = Math.max(0, expiresAt - issuedAt);
  return Math.min(minValidSeconds * 1000, lifetime / 2);
}

/**
 * The expiry the broker works with, on the safe side of the provider's: RFC 6749 §5.1 counts
 * `expires_in` from when the response was generated, which is after the request was sent — so it is
 * anchored at `sentAt`, not at receipt — and a second (a fifth of short lifetimes) is taken off for
 * `exp`'s whole-second granularity. `expiresAt` is receipt time + `expires_in`, as the token endpoint
 * reports it.
 */
export function conservativeExpiry(expiresAt: number, sentAt: number, receivedAt: number): number {
  const lifetime = Math.max(0, expiresAt - receivedAt);
  const margin = Math.min(EXPIRY_GRANULARITY_MS, lifetime / 5);
  return Math.round(Math.min(expiresAt, sentAt + lifetime) - margin);
}

/** The longest `Retry-After` honoured; anything longer is treated as this (a typo must not lock a user out for days). */
export const MAX_RETRY_AFTER_MS = 3_600_000;

/**
 * When to try again after `failures` consecutive transient failures: capped exponential backoff with
 * jitter. A provider's `Retry-After` (RFC 9110 §10.2.3; RFC 6585 §4 for 429) is honoured when longer,
 * even beyond `maxDelayMs`, up to an hour.
 */
export function nextAttemptAt(now: number, failures: number, refresh: RefreshConfig, retryAfterMs?: number, random: () => number = Math.random): number {
  const { baseDelayMs, maxDelayMs } = refresh.retry;
  const backoff = backoffDelay(failures, baseDelayMs, maxDelayMs, random);
  const delay = retryAfterMs === undefined ? backoff : Math.max(backoff, Math.min(retryAfterMs, MAX_RETRY_AFTER_MS));
  return now + delay;
}
