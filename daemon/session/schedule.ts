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
  const lead = timerLeadMs(issuedAt, expiresAt, refresh);
  const jitter = random() * Math.min(refresh.jitterSeconds * 1000, lifetime / 10);
  return Math.round(expiresAt - lead - jitter);
}

/** The longest margin kept below a token's lifetime when an app asks for (nearly) all of it. */
export const MIN_VALID_MARGIN_MS = 5_000;

/**
 * How close to its full lifetime an app may ask a token to be: the lifetime minus a small margin (5 s, a
 * tenth of short lifetimes). A token younger than this margin is never refreshed for `minValidSeconds`:
 * a fresh token is as good as a refresh would give, so apps asking for more than a token lives cannot
 * cause a refresh storm.
 */
export function minValidMarginMs(issuedAt: number, expiresAt: number): number {
  return Math.min(MIN_VALID_MARGIN_MS, Math.max(0, expiresAt - issuedAt) / 10);
}

/**
 * The timer's effective lead (before jitter): `leadSeconds`, at most a third of the lifetime
 * (see plannedRefreshAt).
 */
export function timerLeadMs(issuedAt: number, expiresAt: number, refresh: RefreshConfig): number {
  return Math.min(refresh.leadSeconds * 1000, Math.max(0, expiresAt - issuedAt) / 3);
}

/** The default on-demand threshold is at most this fraction (1/6) of the lifetime: half the timer's longest lead (1/3). */
export const DEFAULT_THRESHOLD_FRACTION = 6;

/**
 * How much validity `token.get` insists on before answering from memory (ms).
 *
 * - An app's explicit `minValidSeconds` is honoured up to the token's (conservative) lifetime minus the
 *   margin (minValidMarginMs): an app that needs 20 minutes of a 30-minute token gets at least that.
 * - Without one, the profile's `refresh.minValidSeconds` (30 s), but at most a sixth of the lifetime:
 *   with the default lead (60 s, at most a third of the lifetime) that is at most half the timer's lead,
 *   so the timer refreshes first and this on-demand threshold only catches a timer that did not fire
 *   (a suspended machine). Apps asking continuously then do not refresh on their own.
 */
export function minValidMs(issuedAt: number, expiresAt: number, refresh: RefreshConfig, explicitSeconds?: number): number {
  const lifetime = Math.max(0, expiresAt - issuedAt);
  if (explicitSeconds !== undefined) return Math.min(explicitSeconds * 1000, lifetime - minValidMarginMs(issuedAt, expiresAt));
  return Math.min(refresh.minValidSeconds * 1000, lifetime / DEFAULT_THRESHOLD_FRACTION);
}

/**
 * Whether `token.get` must refresh before answering: the token has expired, or has less left than
 * minValidMs. The cap at the lifetime minus the margin is the refresh-storm guard: a token issued less than
 * the margin ago has more left than any request can ask (left = lifetime − age > lifetime − margin), so
 * it is never refreshed again for minValidSeconds, however much an app asks.
 */
export function needsRefresh(now: number, issuedAt: number, expiresAt: number, refresh: RefreshConfig, explicitSeconds?: number): boolean {
  return expiresAt <= now || expiresAt - now < minValidMs(issuedAt, expiresAt, refresh, explicitSeconds);
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
