/**
 * The one HTTP client the broker uses to talk to a provider: got, with its own retry and timeouts
 * configured for OAuth endpoints. No cookies, no redirects on POST, JSON accepted, text parsed by us
 * (so a non-JSON answer can be reported by field, not as a parser crash).
 */
import type * as GotModule from 'got';
import type { Got, OptionsOfTextResponseBody, Response, RetryObject } from 'got';
import { packageVersion } from '../version.js';

/** The slice of got the broker uses: GET and POST with text bodies. */
export interface HttpClient {
  get(url: string, options?: OptionsOfTextResponseBody): Promise<Response<string>>;
  post(url: string, options?: OptionsOfTextResponseBody): Promise<Response<string>>;
}

/**
 * got is loaded on the first request to a provider (a refresh, a sign-in, a logout), not at start: an idle
 * daemon does not pay its memory (see bench/README.md, memory).
 */
let gotModule: Promise<typeof GotModule> | undefined;
export const loadGot = (): Promise<typeof GotModule> => (gotModule ??= import('got'));

export interface HttpRetryOptions {
  /** Retries after the first attempt (so `limit + 1` attempts in all). @default 3 */
  readonly limit: number;
  /** Delay before the first retry; doubles each time, with jitter. @default 1000 */
  readonly baseDelayMs: number;
  /** Longest delay between two attempts, also the longest `Retry-After` honoured in-request. @default 300000 */
  readonly maxDelayMs: number;
}

export interface HttpClientOptions {
  /** Timeout of each attempt (connect to last byte). @default 10000 */
  readonly timeoutMs?: number;
  readonly retry?: Partial<HttpRetryOptions>;
  /** Sent as `user-agent`. @default `tokenbroker/<package version>` */
  readonly userAgent?: string;
}

/** Status codes worth another try: request timeout, rate limit, server errors (RFC 9110 §15.6). */
export const RETRYABLE_STATUS_CODES: readonly number[] = [408, 429, 500, 502, 503, 504, 521, 522, 524];

/** Network failures worth another try (got's list, plus a reset socket during TLS). */
export const RETRYABLE_ERROR_CODES: readonly string[] = [
  'ETIMEDOUT',
  'ECONNRESET',
  'EADDRINUSE',
  'ECONNREFUSED',
  'EPIPE',
  'ENOTFOUND',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ECONNABORTED',
];

/**
 * Failures where the request cannot have reached the server. The token endpoint retries only these
 * (and error statuses): after a lost *response* the code or a rotated refresh token may already be
 * spent, and sending it again would get invalid_grant — or make the provider revoke the whole grant
 * as a replay (RFC 9700 §4.14.2). The session's own backoff tries again later instead.
 */
export const NOT_DELIVERED_ERROR_CODES: readonly string[] = ['ECONNREFUSED', 'ENOTFOUND', 'ENETUNREACH', 'EAI_AGAIN', 'EHOSTUNREACH'];

/**
 * The longest wait between two attempts inside one request (backoff or Retry-After). Longer waits are
 * the session's to schedule, so no request is held open for minutes.
 */
export const IN_REQUEST_MAX_WAIT_MS = 10_000;

/**
 * Exponential backoff with "equal jitter": half the step is fixed, half random, so clients that
 * failed together do not retry together, yet the wait never collapses to zero.
 */
export function backoffDelay(attempt: number, base: number, max: number, random: () => number = Math.random): number {
  const step = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  return Math.max(1, Math.round(step / 2 + random() * (step / 2)));
}

/**
 * Creates the provider HTTP client.
 *
 * Retries (got's, not a loop of ours) on network errors, timeouts, 408, 429 and 5xx — for POST too: a
 * revocation is idempotent (RFC 7009 §2.2); the token endpoint narrows the network errors to those where
 * the request never left (see NOT_DELIVERED_ERROR_CODES). A `Retry-After` (RFC 9110 §10.2.3) is honoured
 * in-request when it is at most IN_REQUEST_MAX_WAIT_MS; a longer one ends the in-request retries and the
 * caller sees it on the error (`retryAfterMs`), so the session schedules the next try instead of
 * holding a request open.
 */
export function createHttpClient(options: HttpClientOptions = {}): HttpClient {
  let instance: Promise<Got> | undefined;
  const client = () => (instance ??= loadGot().then(({ default: got }) => configure(got, options)));
  return {
    get: async (url, requestOptions) => (await client()).get(url, requestOptions),
    post: async (url, requestOptions) => (await client()).post(url, requestOptions),
  };
}

function configure(got: Got, options: HttpClientOptions): Got {
  const limit = options.retry?.limit ?? 3;
  const baseDelayMs = options.retry?.baseDelayMs ?? 1_000;
  const maxDelayMs = Math.min(IN_REQUEST_MAX_WAIT_MS, Math.max(baseDelayMs, options.retry?.maxDelayMs ?? 300_000));
  return got.extend({
    timeout: { request: options.timeoutMs ?? 10_000 },
    headers: {
      accept: 'application/json',
      'user-agent': options.userAgent ?? `tokenbroker/${packageVersion()}`,
    },
    responseType: 'text',
    followRedirect: false,
    throwHttpErrors: true,
    retry: {
      limit,
      methods: ['GET', 'POST'],
      statusCodes: [...RETRYABLE_STATUS_CODES],
      errorCodes: [...RETRYABLE_ERROR_CODES],
      maxRetryAfter: maxDelayMs,
      // got has already applied limit/methods/status/error rules (enforceRetryRules) and the
      // Retry-After cap: `computedValue` is the server's delay, or 0 when it exceeds `maxRetryAfter`.
      calculateDelay: ({ attemptCount, retryAfter, computedValue }: RetryObject) => {
        if (computedValue === 0) return 0;
        if (retryAfter !== undefined) return computedValue;
        return backoffDelay(attemptCount, baseDelayMs, maxDelayMs);
      },
    },
  });
}
