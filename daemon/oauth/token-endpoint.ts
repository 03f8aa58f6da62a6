/**
 * The token endpoint: code exchange (RFC 6749 §4.1.3, RFC 7636 §4.5) and refresh (RFC 6749 §6), as a
 * public client (RFC 8252 §8.4: `client_id` in the body, no secret). Every answer is validated field by
 * field (RFC 6749 §5.1); every failure is classified transient or permanent (RFC 6749 §5.2).
 */
import { BrokerError } from '../../proto/errors.js';
import { Secret } from '../secret.js';
import { NOT_DELIVERED_ERROR_CODES, type HttpClient } from './http.js';
import { authenticateClient, type ClientAuthentication } from './client-auth.js';
import type { ProviderMetadata } from './metadata.js';
import { TokenEndpointError, classifyHttpFailure, errorCodeFor, parseJsonObject } from './provider-error.js';

export interface TokenSet {
  readonly accessToken: Secret;
  /** Always "Bearer" (normalised); DPoP and other types are refused. */
  readonly tokenType: string;
  /** When the access token expires, epoch ms (receipt time + `expires_in`). */
  readonly expiresAt: number;
  /** A new refresh token; absent when the provider did not issue or rotate one — keep the old one. */
  readonly refreshToken?: Secret;
  readonly idToken?: Secret;
  /** Granted scopes: the response's `scope`, else the requested ones (RFC 6749 §5.1). */
  readonly scopes: string[];
  /** The provider's `expires_in` when it was above MAX_EXPIRES_IN_SECONDS (and `expiresAt` was clamped to that bound). */
  readonly expiresInClamped?: number;
  /** The provider's clock at its answer: the response's `Date` header (RFC 9110 §6.6.1), epoch ms, when present and valid. */
  readonly providerDate?: number;
}

/**
 * Lifetime assumed when the provider omits `expires_in` (RFC 6749 §5.1 only RECOMMENDS it). Short on
 * purpose: refreshing early is harmless, handing out an expired token is not.
 */
export const DEFAULT_EXPIRES_IN_SECONDS = 300;

/**
 * The longest access-token lifetime the broker believes: one year. RFC 6749 sets no bound, but a larger
 * `expires_in` is a provider bug (one answered `1e13`, a date beyond what `Date` can represent); the
 * token is used with this lifetime instead, and the caller logs a warning. Clamped, not refused: a
 * refused answer would throw away a rotated refresh token that came with it.
 */
export const MAX_EXPIRES_IN_SECONDS = 365 * 24 * 3600;

interface Common {
  readonly http: HttpClient;
  readonly metadata: ProviderMetadata;
  readonly clientId: string;
  /** A client secret the provider requires even of an installed app; absent for a public client (RFC 8252 §8.4). */
  readonly clientAuth?: ClientAuthentication;
  /** Clock, for tests. @default Date.now */
  readonly now?: () => number;
}

export interface ExchangeAuthorizationCodeOptions extends Common {
  readonly code: Secret;
  readonly codeVerifier: Secret;
  /** Exactly the redirect URI of the authorization request (RFC 6749 §4.1.3). */
  readonly redirectUri: string;
  /** The scopes requested, the answer's scopes when `scope` is absent. @default [] */
  readonly requestedScopes?: readonly string[];
}

export interface RefreshAccessTokenOptions extends Common {
  readonly refreshToken: Secret;
  /** Narrow the scope (RFC 6749 §6); omitted → the originally granted scope is kept. */
  readonly scopes?: readonly string[];
  /** The scopes granted so far, the answer's scopes when `scope` is absent (RFC 6749 §5.1). */
  readonly grantedScopes?: readonly string[];
  /** RFC 8707 §2.2: the resource servers the access token is for (one `resource` parameter each). */
  readonly resource?: readonly string[];
  /** The parameter that carries `resource` for a provider with its own (Auth0's `audience`). @default "resource" */
  readonly audienceParam?: string;
}

/** RFC 6749 §4.1.3 + RFC 7636 §4.5: trades the authorization code (and its verifier) for tokens. */
export function exchangeAuthorizationCode(options: ExchangeAuthorizationCodeOptions): Promise<TokenSet> {
  return requestTokens(
    options,
    {
      grant_type: 'authorization_code',
      code: options.code.reveal(),
      redirect_uri: options.redirectUri,
      code_verifier: options.codeVerifier.reveal(),
      client_id: options.clientId,
    },
    options.requestedScopes ?? [],
  );
}

/** RFC 6749 §6: a new access token (and maybe a rotated refresh token) for a refresh token. */
export function refreshAccessToken(options: RefreshAccessTokenOptions): Promise<TokenSet> {
  const form: Record<string, string> = {
    grant_type: 'refresh_token',
    refresh_token: options.refreshToken.reveal(),
    client_id: options.clientId,
  };
  if (options.scopes !== undefined && options.scopes.length > 0) form['scope'] = options.scopes.join(' ');
  const resource = options.resource ?? [];
  // RFC 8707 §2: one parameter per resource; a single one stays a plain form field.
  if (resource.length === 1) form[options.audienceParam ?? 'resource'] = resource[0]!;
  const extra = resource.length > 1 ? resource.map((value): [string, string] => [options.audienceParam ?? 'resource', value]) : [];
  return requestTokens(options, form, options.scopes ?? options.grantedScopes ?? [], extra);
}

async function requestTokens(
  options: Common,
  form: Record<string, string>,
  fallbackScopes: readonly string[],
  repeated: ReadonlyArray<[string, string]> = [],
): Promise<TokenSet> {
  const now = options.now ?? Date.now;
  let body: unknown;
  let providerDate: number | undefined;
  try {
    // RFC 6749 §3.2: POST, application/x-www-form-urlencoded. got retries error statuses, and network
    // failures only where the request never left (a spent code or rotated token must not be resent).
    // RFC 6749 §2.3.1: client_id in the body; a secret (when the provider requires one) in the body or Basic.
    const request = authenticateClient(form, options.clientId, options.clientAuth);
    // A repeated parameter (several RFC 8707 resources) needs a body of its own: got's `form` takes one value per name.
    const payload =
      repeated.length === 0
        ? { form: request.form }
        : {
            body: new URLSearchParams([...Object.entries(request.form), ...repeated]).toString(),
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
          };
    const response = await options.http.post(options.metadata.tokenEndpoint, {
      ...payload,
      headers: { ...('headers' in payload ? payload.headers : {}), 'cache-control': 'no-store', ...request.headers },
      retry: { errorCodes: [...NOT_DELIVERED_ERROR_CODES] },
    });
    body = response.body;
    providerDate = parseDateHeader(response.headers?.date);
  } catch (error) {
    const details = classifyHttpFailure(error, 'token endpoint', now());
    throw new TokenEndpointError(errorCodeFor(details), details.message, details, { now: now() });
  }
  const set = parseTokenResponse(body, fallbackScopes, now());
  return providerDate === undefined ? set : { ...set, providerDate };
}

/** An HTTP-date (RFC 9110 §5.6.7), as epoch ms; undefined when absent or unparseable. */
export function parseDateHeader(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const time = Date.parse(value);
  return Number.isFinite(time) ? time : undefined;
}

function malformed(field: string, problem: string): TokenEndpointError {
  return new TokenEndpointError('IDP_ERROR', `token endpoint response: "${field}" ${problem}`, { kind: 'permanent' }, { field });
}

function optionalToken(json: Record<string, unknown>, field: string): Secret | undefined {
  const value = json[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value === '') throw malformed(field, 'is not a non-empty string');
  return new Secret(value);
}

/** RFC 6749 §5.1: validates a successful token response; `receivedAt` anchors `expires_in`. */
export function parseTokenResponse(body: unknown, fallbackScopes: readonly string[], receivedAt: number): TokenSet {
  const json = parseJsonObject(body);
  if (json === undefined) throw malformed('body', 'is not a JSON object');

  const accessToken = json['access_token'];
  if (typeof accessToken !== 'string' || accessToken === '') throw malformed('access_token', 'is missing or not a non-empty string');

  // RFC 6749 §7.1 / RFC 6750: only Bearer, compared case-insensitively. DPoP (RFC 9449) is not supported.
  const tokenType = json['token_type'];
  if (typeof tokenType !== 'string') throw malformed('token_type', 'is missing or not a string');
  if (tokenType.toLowerCase() !== 'bearer') throw malformed('token_type', `is ${JSON.stringify(tokenType.slice(0, 32))}; only "Bearer" is supported`);

  let expiresIn = json['expires_in'];
  // Some providers send a numeric string; accept decimal digits only.
  if (typeof expiresIn === 'string' && /^\d{1,10}$/.test(expiresIn)) expiresIn = Number(expiresIn);
  // RFC 6749 §5.1 only RECOMMENDS expires_in. Without it: the access token's own `exp` when it is a JWT
  // (RFC 9068 §2.2), else DEFAULT_EXPIRES_IN_SECONDS.
  if (expiresIn === undefined || expiresIn === null) expiresIn = jwtLifetimeSeconds(accessToken, receivedAt) ?? DEFAULT_EXPIRES_IN_SECONDS;
  if (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn) || expiresIn <= 0) {
    throw malformed('expires_in', 'is not a positive number of seconds');
  }
  const clamped = expiresIn > MAX_EXPIRES_IN_SECONDS ? expiresIn : undefined;
  if (clamped !== undefined) expiresIn = MAX_EXPIRES_IN_SECONDS;

  const scope = json['scope'];
  if (scope !== undefined && scope !== null && typeof scope !== 'string') throw malformed('scope', 'is not a string');
  // RFC 6749 §5.1: scope is OPTIONAL if identical to the requested scope.
  const scopes = typeof scope === 'string' ? scope.split(' ').filter((s) => s !== '') : [...fallbackScopes];

  const refreshToken = optionalToken(json, 'refresh_token');
  const idToken = optionalToken(json, 'id_token');
  return {
    accessToken: new Secret(accessToken),
    tokenType: 'Bearer',
    expiresAt: receivedAt + Math.floor((expiresIn as number) * 1000),
    ...(refreshToken === undefined ? {} : { refreshToken }),
    ...(idToken === undefined ? {} : { idToken }),
    scopes,
    ...(clamped === undefined ? {} : { expiresInClamped: clamped }),
  };
}

/**
 * Seconds until a JWT access token's `exp` (RFC 7519 §4.1.4), for a token response without `expires_in`.
 * The signature is not checked: the token came from the token endpoint over TLS in answer to this request,
 * and only its lifetime is read (the API checks the token itself). Undefined for an opaque token, a JWT
 * without a numeric `exp`, or an `exp` that is not in the future.
 */
export function jwtLifetimeSeconds(token: string, receivedAt: number): number | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  const exp = typeof payload === 'object' && payload !== null ? (payload as { exp?: unknown }).exp : undefined;
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return undefined;
  const seconds = exp - receivedAt / 1000;
  return seconds > 0 ? seconds : undefined;
}

/** True when a failure means the grant is gone and the user must sign in again. */
export function isLoginRequired(error: unknown): boolean {
  return error instanceof BrokerError && error.code === 'LOGIN_REQUIRED';
}

/** RFC 8628 §3.4: the grant type of the device access token request. */
export const DEVICE_CODE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:device_code';

export interface ExchangeDeviceCodeOptions extends Common {
  readonly deviceCode: Secret;
  /** The scopes requested, the answer's scopes when `scope` is absent. @default [] */
  readonly requestedScopes?: readonly string[];
}

/**
 * RFC 8628 §3.4: one device access token request. Until the user has answered, the provider refuses it
 * with `authorization_pending` or `slow_down` (§3.5): the caller polls (device-authorization.ts).
 */
export function exchangeDeviceCode(options: ExchangeDeviceCodeOptions): Promise<TokenSet> {
  return requestTokens(
    options,
    { grant_type: DEVICE_CODE_GRANT_TYPE, device_code: options.deviceCode.reveal(), client_id: options.clientId },
    options.requestedScopes ?? [],
  );
}
