/**
 * The OAuth 2.0 Device Authorization Grant (RFC 8628), for machines without a browser to redirect back to
 * (an SSH session, a container, a server): the broker asks the device authorization endpoint for a user
 * code (§3.1–3.2), the user enters it on any other device (§3.3), and the broker polls the token endpoint
 * until the user has approved or denied, or the code expires (§3.4–3.5).
 *
 * @see https://www.rfc-editor.org/rfc/rfc8628
 */
import { BrokerError } from '../../proto/errors.js';
import { Secret } from '../secret.js';
import type { HttpClient } from './http.js';
import type { ProviderMetadata } from './metadata.js';
import { ProviderEndpointError, classifyHttpFailure, errorCodeFor, parseJsonObject } from './provider-error.js';
import type { TokenSet } from './token-endpoint.js';
import { isLoopbackHost } from './url-rules.js';

/** RFC 8628 §3.2: "If no value is provided, clients MUST use 5 as the default." */
export const DEFAULT_POLL_INTERVAL_SECONDS = 5;
/** RFC 8628 §3.5: on `slow_down` "the interval MUST be increased by 5 seconds for this and all subsequent requests". */
export const SLOW_DOWN_INCREMENT_SECONDS = 5;
/** A provider's `interval` above this is treated as this (a provider bug must not stall the sign-in). */
export const MAX_POLL_INTERVAL_SECONDS = 60;
/** A device code is believed to live at most this long (an absurd `expires_in` must not keep a poller forever). */
export const MAX_DEVICE_CODE_SECONDS = 3600;
/** After network failures the wait grows up to this many intervals (RFC 8628 §3.5: exponential backoff). */
const MAX_BACKOFF_FACTOR = 8;
/** User codes are shown on a terminal: printable characters only, bounded. */
const USER_CODE = /^[\x21-\x7E](?:[\x20-\x7E]{0,62}[\x21-\x7E])?$/;

/** What the device authorization endpoint answered (RFC 8628 §3.2), validated. */
export interface DeviceAuthorization {
  /** Only for the token endpoint: it is the grant itself until the user approves. */
  readonly deviceCode: Secret;
  /** What the user types at `verificationUri`. */
  readonly userCode: string;
  readonly verificationUri: string;
  /** `verificationUri` with the user code in it (optional in RFC 8628 §3.2): a link or QR code. */
  readonly verificationUriComplete?: string;
  /** When the device code expires (receipt time + `expires_in`), epoch ms. */
  readonly expiresAt: number;
  /** The minimum wait between polls, seconds. */
  readonly intervalSeconds: number;
}

export interface RequestDeviceAuthorizationOptions {
  readonly http: HttpClient;
  readonly metadata: ProviderMetadata;
  readonly clientId: string;
  readonly scopes: readonly string[];
  /** Extra parameters (e.g. a `resource` or `audience` a provider wants). */
  readonly extraParams?: Readonly<Record<string, string>>;
  /** @default Date.now */
  readonly now?: () => number;
}

function invalid(field: string, problem: string): ProviderEndpointError {
  return new ProviderEndpointError('IDP_ERROR', `device authorization response: "${field}" ${problem}`, { kind: 'permanent' }, { field });
}

/** The provider's device authorization endpoint, or a LOGIN_FAILED that says what to do instead. */
export function deviceAuthorizationEndpoint(metadata: ProviderMetadata, profile: string): string {
  if (metadata.deviceAuthorizationEndpoint !== undefined) return metadata.deviceAuthorizationEndpoint;
  throw new BrokerError(
    'LOGIN_FAILED',
    `${profile}: the provider advertises no device authorization endpoint (RFC 8628 "device_authorization_endpoint"), so it cannot sign in without a browser; sign in with the browser (tokenbroker login --no-browser prints a link to open elsewhere)`,
  );
}

/** RFC 8628 §3.1: the device authorization request (a public client: `client_id` in the form, no secret). */
export async function requestDeviceAuthorization(options: RequestDeviceAuthorizationOptions): Promise<DeviceAuthorization> {
  const now = options.now ?? Date.now;
  const endpoint = options.metadata.deviceAuthorizationEndpoint;
  if (endpoint === undefined) throw new BrokerError('IDP_ERROR', 'the provider has no device authorization endpoint');
  const form: Record<string, string> = { ...options.extraParams, client_id: options.clientId };
  if (options.scopes.length > 0) form['scope'] = options.scopes.join(' ');
  let body: unknown;
  try {
    body = (await options.http.post(endpoint, { form, headers: { 'cache-control': 'no-store' } })).body;
  } catch (error) {
    const details = classifyHttpFailure(error, 'device authorization endpoint', now());
    throw new ProviderEndpointError(errorCodeFor(details), details.message, details, { now: now() });
  }
  return parseDeviceAuthorizationResponse(body, now());
}

function verificationUrl(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '') throw invalid(field, 'is missing or not a string');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid(field, 'is not an absolute URL');
  }
  // The user is sent there with their credentials: https only (http on a loopback host, for local providers).
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw invalid(field, 'must be an https URL');
  }
  if (url.username !== '' || url.password !== '') throw invalid(field, 'must not carry credentials');
  // The serialised form is percent-encoded: nothing in it can act on the terminal it is printed to.
  return url.href;
}

function positiveSeconds(value: unknown): number | undefined {
  if (typeof value === 'string' && /^\d{1,10}$/.test(value)) return Number(value);
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

/** RFC 8628 §3.2: validates the device authorization response; `receivedAt` anchors `expires_in`. */
export function parseDeviceAuthorizationResponse(body: unknown, receivedAt: number): DeviceAuthorization {
  const json = parseJsonObject(body);
  if (json === undefined) throw invalid('body', 'is not a JSON object');
  const deviceCode = json['device_code'];
  if (typeof deviceCode !== 'string' || deviceCode === '' || deviceCode.length > 4096) throw invalid('device_code', 'is missing or not a non-empty string');
  const userCode = json['user_code'];
  if (typeof userCode !== 'string' || !USER_CODE.test(userCode)) throw invalid('user_code', 'is missing or not 1–64 printable characters');
  // Some providers spell it "verification_url" (pre-RFC drafts); the RFC's name wins.
  const verificationUri = verificationUrl(json['verification_uri'] ?? json['verification_url'], 'verification_uri');
  const complete = json['verification_uri_complete'];
  const verificationUriComplete = complete === undefined || complete === null ? undefined : verificationUrl(complete, 'verification_uri_complete');
  const expiresIn = positiveSeconds(json['expires_in']);
  if (expiresIn === undefined || expiresIn === 0) throw invalid('expires_in', 'is missing or not a positive number of seconds');
  const interval = json['interval'] === undefined || json['interval'] === null ? DEFAULT_POLL_INTERVAL_SECONDS : positiveSeconds(json['interval']);
  if (interval === undefined) throw invalid('interval', 'is not a number of seconds');
  return {
    deviceCode: new Secret(deviceCode),
    userCode,
    verificationUri,
    ...(verificationUriComplete === undefined ? {} : { verificationUriComplete }),
    expiresAt: receivedAt + Math.floor(Math.min(expiresIn, MAX_DEVICE_CODE_SECONDS) * 1000),
    // At least one second between polls, whatever the provider says; at most MAX_POLL_INTERVAL_SECONDS.
    intervalSeconds: Math.min(Math.max(interval, 1), MAX_POLL_INTERVAL_SECONDS),
  };
}

/** Why a poll did not yield tokens yet (for logs and progress). */
export type PollState = 'authorization_pending' | 'slow_down' | 'unreachable';

export interface PollDeviceTokensOptions {
  readonly authorization: Pick<DeviceAuthorization, 'expiresAt' | 'intervalSeconds'>;
  /** One device access token request (RFC 8628 §3.4): `exchangeDeviceCode`. */
  readonly exchange: () => Promise<TokenSet>;
  readonly now: () => number;
  /** Waits `ms`; rejects when `signal` fires. */
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Stops the polling (the sign-in was cancelled, timed out or replaced). */
  readonly signal: AbortSignal;
  /** Told after each poll that did not end the sign-in, with the wait before the next one (ms). */
  readonly onPoll?: (state: PollState, nextPollInMs: number) => void;
}

function expired(): BrokerError {
  return new BrokerError('LOGIN_TIMEOUT', 'the sign-in code expired before it was confirmed; sign in again for a new code');
}

/**
 * RFC 8628 §3.4–3.5: polls the token endpoint, never faster than the interval, until the user approves
 * (the tokens), denies (`access_denied` → LOGIN_FAILED) or the code expires (`expired_token`, or its
 * `expires_in` passing → LOGIN_TIMEOUT). `authorization_pending` polls on; `slow_down` adds 5 s to the
 * interval for good; a network failure or a 5xx doubles the wait each time, up to 8 intervals (§3.5).
 * Any other error answer ends the sign-in with the provider's description (LOGIN_FAILED).
 */
export async function pollDeviceTokens(options: PollDeviceTokensOptions): Promise<TokenSet> {
  const { authorization, now, signal } = options;
  let intervalMs = authorization.intervalSeconds * 1000;
  let backoff = 1;
  for (;;) {
    const wait = intervalMs * backoff;
    const left = authorization.expiresAt - now();
    if (left <= 0) throw expired();
    // A code that expires before the next slot gets one last poll at its expiry, not a wasted wait.
    await options.sleep(Math.min(wait, left), signal);
    if (now() > authorization.expiresAt) throw expired();
    let state: PollState;
    try {
      return await options.exchange();
    } catch (error) {
      if (!(error instanceof ProviderEndpointError)) throw error;
      switch (error.oauthError) {
        case 'authorization_pending': // §3.5: the user has not finished yet
          state = 'authorization_pending';
          backoff = 1;
          break;
        case 'slow_down': // §3.5: polling too fast; +5 s for this and every later request
          state = 'slow_down';
          intervalMs += SLOW_DOWN_INCREMENT_SECONDS * 1000;
          backoff = 1;
          break;
        case 'expired_token': // §3.5: the device code expired
          throw expired();
        case 'access_denied': // §3.5: the user declined
          throw new BrokerError('LOGIN_FAILED', 'the sign-in was declined at the provider (access_denied)');
        default:
          if (error.kind === 'transient' && error.oauthError === undefined) {
            // §3.5: "SHOULD use exponential backoff" on connection failures; the code keeps its expiry.
            state = 'unreachable';
            backoff = Math.min(backoff * 2, MAX_BACKOFF_FACTOR);
            break;
          }
          throw new BrokerError(
            'LOGIN_FAILED',
            `the provider refused the device sign-in: ${error.oauthError ?? `HTTP ${error.status ?? '?'}`}${error.oauthErrorDescription === undefined ? '' : ` (${error.oauthErrorDescription})`}`,
          );
      }
    }
    options.onPoll?.(state, intervalMs * backoff);
  }
}
