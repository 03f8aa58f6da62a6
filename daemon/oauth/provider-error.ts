/**
 * Classifying what went wrong when talking to a provider endpoint, without ever carrying the request
 * (got's errors hold the request options, whose form body has the code or refresh token: they are
 * never attached as `cause`).
 */
import { createRequire } from 'node:module';
import type * as GotModule from 'got';
import type { RequestError } from 'got';

/**
 * got's error class, for a failure that has happened: got is loaded lazily (http.ts), and by the time a
 * request failed it is in memory; `require` of the ES module returns that same instance.
 */
const gotRequestError = (): typeof RequestError => (createRequire(import.meta.url)('got') as typeof GotModule).RequestError;
import { BrokerError, type ErrorCode } from '../../proto/errors.js';
import { RETRYABLE_STATUS_CODES } from './http.js';

export type FailureKind = 'transient' | 'permanent';

export interface ProviderErrorDetails {
  readonly kind: FailureKind;
  /** The OAuth `error` code of an error response (RFC 6749 §5.2), when there was one. */
  readonly oauthError?: string;
  /** The provider's `error_description`, trimmed; safe to show (it never echoes our secrets). */
  readonly oauthErrorDescription?: string;
  /** HTTP status, when a response arrived. */
  readonly status?: number;
  /** The provider's `Retry-After`, in ms, when it sent one. */
  readonly retryAfterMs?: number;
  /** A network error code such as ECONNREFUSED or ETIMEDOUT, when no response arrived. */
  readonly networkError?: string;
}

/**
 * A failed call to a provider endpoint (token, revocation, discovery). Its `code` follows the
 * classification: transient → IDP_UNAVAILABLE (with `retryAt` when the provider said when),
 * `invalid_grant` → LOGIN_REQUIRED, anything else permanent → IDP_ERROR.
 */
export class ProviderEndpointError extends BrokerError implements ProviderErrorDetails {
  readonly kind: FailureKind;
  readonly oauthError?: string;
  readonly oauthErrorDescription?: string;
  readonly status?: number;
  readonly retryAfterMs?: number;
  readonly networkError?: string;

  constructor(code: ErrorCode, message: string, details: ProviderErrorDetails, extra: { readonly now?: number; readonly field?: string } = {}) {
    super(code, message, {
      ...(details.retryAfterMs === undefined ? {} : { retryAt: (extra.now ?? Date.now()) + details.retryAfterMs }),
      ...(extra.field === undefined ? {} : { field: extra.field }),
    });
    this.kind = details.kind;
    if (details.oauthError !== undefined) this.oauthError = details.oauthError;
    if (details.oauthErrorDescription !== undefined) this.oauthErrorDescription = details.oauthErrorDescription;
    if (details.status !== undefined) this.status = details.status;
    if (details.retryAfterMs !== undefined) this.retryAfterMs = details.retryAfterMs;
    if (details.networkError !== undefined) this.networkError = details.networkError;
  }
}

/** The token endpoint's flavour of the error (RFC 6749 §5.2). */
export class TokenEndpointError extends ProviderEndpointError {}

/** Parses `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date; invalid → undefined. */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const header = Array.isArray(value) ? value[0] : value;
  if (header === undefined) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Parses a JSON object body; undefined when it is not one. */
export function parseJsonObject(body: unknown): Record<string, unknown> | undefined {
  if (typeof body !== 'string') return undefined;
  try {
    const value: unknown = JSON.parse(body);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const OAUTH_ERROR_CODE = /^[\x20-\x21\x23-\x5B\x5D-\x7E]{1,64}$/; // RFC 6749 §5.2 NQSCHAR, bounded

function describe(text: unknown): string | undefined {
  if (typeof text !== 'string') return undefined;
  const clean = text.replace(/[\x00-\x1F\x7F]/g, ' ').trim();
  return clean === '' ? undefined : clean.slice(0, 300);
}

/**
 * Classifies a failure from got: no response (network/timeout) or 408/429/5xx is transient; any other
 * status is permanent. `what` names the endpoint for messages ("token endpoint").
 */
export function classifyHttpFailure(error: unknown, what: string, now: number = Date.now()): ProviderErrorDetails & { message: string } {
  if (!(error instanceof gotRequestError())) {
    const message = error instanceof Error ? error.message : String(error);
    return { kind: 'transient', message: `${what} could not be reached: ${message}` };
  }
  const response = error.response;
  if (response === undefined) {
    const networkError = error.code || error.name;
    return { kind: 'transient', networkError, message: `${what} could not be reached (${networkError})` };
  }
  const status = response.statusCode;
  const retryAfterMs = parseRetryAfter(response.headers['retry-after'], now);
  const body = parseJsonObject(response.body);
  const rawError = body?.['error'];
  const oauthError = typeof rawError === 'string' && OAUTH_ERROR_CODE.test(rawError) ? rawError : undefined;
  const oauthErrorDescription = describe(body?.['error_description']);
  const transient = RETRYABLE_STATUS_CODES.includes(status) || (status >= 500 && status <= 599);
  const detail = oauthError === undefined ? '' : `: ${oauthError}${oauthErrorDescription === undefined ? '' : ` (${oauthErrorDescription})`}`;
  return {
    kind: transient ? 'transient' : 'permanent',
    status,
    ...(oauthError === undefined ? {} : { oauthError }),
    ...(oauthErrorDescription === undefined ? {} : { oauthErrorDescription }),
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    message: `${what} answered HTTP ${status}${detail}`,
  };
}

/** The BrokerError code for a classified failure. */
export function errorCodeFor(details: ProviderErrorDetails): ErrorCode {
  if (details.kind === 'transient') return 'IDP_UNAVAILABLE';
  // RFC 6749 §5.2: the grant (code or refresh token) is invalid, expired or revoked — sign in again.
  if (details.oauthError === 'invalid_grant') return 'LOGIN_REQUIRED';
  return 'IDP_ERROR';
}
