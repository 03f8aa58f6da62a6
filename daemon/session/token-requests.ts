/**
 * The two token-endpoint calls a session makes, each turned into the `StoredTokens` the session keeps:
 * the authorization-code exchange that ends a login (RFC 6749 §4.1.3, RFC 7636 §4.5) and the refresh
 * (RFC 6749 §6). Expiry is counted conservatively (see `conservativeExpiry`).
 */
import { BrokerError } from '../../proto/index.js';
import type { ProfileConfig } from '../config.js';
import {
  exchangeAuthorizationCode,
  parseAuthorizationResponse,
  refreshAccessToken,
  validateIdToken,
  ProviderEndpointError,
  type HttpClient,
  type ProviderMetadata,
} from '../oauth/index.js';
import type { Secret } from '../secret.js';
import type { StoredTokens } from '../store/keychain.js';
import type { PendingLogin } from './login-flow.js';
import { conservativeExpiry } from './schedule.js';

export interface TokenRequestDeps {
  readonly profile: ProfileConfig;
  readonly http: HttpClient;
  readonly now: () => number;
}

export interface Refreshed {
  readonly tokens: StoredTokens;
  /** The provider issued a *different* refresh token (rotation); the old one is dead from now on. */
  readonly rotated: boolean;
}

/** RFC 6749 §6: new tokens for `tokens.refreshToken`; the old refresh token is kept when none (or the same) comes back. */
export async function refreshGrant(deps: TokenRequestDeps, metadata: ProviderMetadata, tokens: StoredTokens & { refreshToken: NonNullable<StoredTokens['refreshToken']> }): Promise<Refreshed> {
  const { profile, http, now } = deps;
  const sentAt = now();
  const set = await refreshAccessToken({ http, metadata, clientId: profile.clientId, refreshToken: tokens.refreshToken, grantedScopes: tokens.scopes, now });
  const receivedAt = now();
  let { subject, email } = tokens;
  // Providers that do not rotate often send the same refresh token back (oidc-provider does): not a rotation.
  const rotated = set.refreshToken !== undefined && !set.refreshToken.equals(tokens.refreshToken.reveal());
  if (set.idToken) {
    // OIDC Core §12.2: a refreshed ID token must name the same subject.
    const claims = await validateIdToken(set.idToken, {
      metadata,
      clientId: profile.clientId,
      now,
      ...(subject === undefined ? {} : { expectedSubject: subject }),
    }).catch((error: unknown) => {
      // The key set cannot be fetched just now: the new tokens are not used — but a rotated refresh
      // token is the only one that works from now on, so it is handed back to be kept.
      if (rotated && classifyRefreshFailure(error).transient) throw new UnverifiedRefresh(error, set.refreshToken!);
      throw error;
    });
    subject = claims.sub;
    email = claims.email ?? email;
  }
  const idToken = set.idToken ?? tokens.idToken;
  return {
    rotated,
    tokens: {
      accessToken: set.accessToken,
      refreshToken: rotated ? set.refreshToken! : tokens.refreshToken,
      ...(idToken ? { idToken } : {}),
      expiresAt: conservativeExpiry(set.expiresAt, sentAt, receivedAt),
      scopes: set.scopes,
      tokenType: set.tokenType,
      ...(subject === undefined ? {} : { subject }),
      ...(email === undefined ? {} : { email }),
      savedAt: receivedAt,
    },
  };
}

/**
 * The checks of a login's redirect that come before anything is consumed: state and, first of all,
 * RFC 9207 `iss` (present and equal when the provider says it sends it), then the provider's error
 * response, then the code. Throws LOGIN_FAILED (an `AuthorizationResponseError` for the provider's
 * `error=`); returns the code.
 */
export function checkLoginRedirect(login: PendingLogin, url: string): Secret {
  const { metadata } = login;
  // RFC 9207 §2.4: `iss` must match when present (and be present when the provider says it sends it).
  return parseAuthorizationResponse(url, {
    state: login.state,
    issuer: metadata.issuer,
    issRequired: metadata.authorizationResponseIssParameterSupported,
  }).code;
}

/**
 * Ends a login: trades the code (from `checkLoginRedirect`) and the verifier for tokens, and validates
 * the ID token against this request's nonce.
 */
export async function authorizationCodeGrant(deps: TokenRequestDeps, login: PendingLogin, code: Secret): Promise<StoredTokens> {
  const { profile, http, now } = deps;
  const { metadata } = login;
  const sentAt = now();
  const set = await exchangeAuthorizationCode({
    http,
    metadata,
    clientId: profile.clientId,
    code,
    codeVerifier: login.request.codeVerifier,
    redirectUri: login.redirectUri,
    requestedScopes: profile.scopes,
    now,
  }).catch((error: unknown) => {
    if (error instanceof BrokerError && error.code === 'LOGIN_REQUIRED') {
      throw new BrokerError('LOGIN_FAILED', `${profile.name}: the provider rejected the authorization code (${(error as ProviderEndpointError).oauthError ?? 'invalid_grant'})`);
    }
    throw error;
  });
  const receivedAt = now();
  if (!set.idToken) throw new BrokerError('LOGIN_FAILED', `${profile.name}: the provider returned no ID token (is "openid" in scopes?)`);
  // OIDC Core §3.1.3.7: signature, iss, aud, exp, and the nonce of this very request.
  const claims = await validateIdToken(set.idToken, { metadata, clientId: profile.clientId, nonce: login.request.nonce, accessToken: set.accessToken, now });
  return {
    accessToken: set.accessToken,
    ...(set.refreshToken ? { refreshToken: set.refreshToken } : {}),
    idToken: set.idToken,
    expiresAt: conservativeExpiry(set.expiresAt, sentAt, receivedAt),
    scopes: set.scopes,
    tokenType: set.tokenType,
    subject: claims.sub,
    ...(claims.email === undefined ? {} : { email: claims.email }),
    savedAt: receivedAt,
  };
}

/**
 * The provider answered a refresh with a rotated refresh token, but its ID token could not be checked
 * (a transient failure: the key set is unreachable). The new access token is not used; `refreshToken`
 * must be kept, as the old one is already spent. `failure` is what went wrong, classified as usual.
 */
export class UnverifiedRefresh extends Error {
  constructor(
    readonly failure: unknown,
    readonly refreshToken: Secret,
  ) {
    super('the refreshed ID token could not be verified yet');
  }
}

/** What a failed refresh means for the session. */
export type RefreshFailure =
  | { readonly transient: true; readonly code: 'IDP_UNAVAILABLE' | 'IDP_ERROR' | 'INTERNAL'; readonly retryAfterMs?: number }
  | { readonly transient: false; readonly code: string; readonly reason: string };

/**
 * Permanent — the session ends: a 4xx from the token endpoint (RFC 6749 §5.2: `invalid_grant` for an
 * expired, revoked or tampered refresh token, `invalid_client`, …) or a refreshed ID token that fails its
 * checks (another user, a bad signature). Everything else is retried with backoff: no answer, timeouts,
 * 408/429/5xx, and also answers the broker cannot use (a 200 that is not a token response, unusable
 * metadata or keys) — they say nothing about the refresh token, and dropping a working one is the worse
 * mistake.
 */
export function classifyRefreshFailure(error: unknown): RefreshFailure {
  if (error instanceof UnverifiedRefresh) return classifyRefreshFailure(error.failure);
  if (error instanceof ProviderEndpointError) {
    if (error.kind === 'transient') {
      return { transient: true, code: 'IDP_UNAVAILABLE', ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }) };
    }
    if (error.status !== undefined && error.status >= 400 && error.status < 500) {
      return { transient: false, code: error.code, reason: error.oauthError ?? `http_${error.status}` };
    }
    return { transient: true, code: 'IDP_ERROR' };
  }
  if (error instanceof BrokerError) {
    if (error.code === 'IDP_UNAVAILABLE' || error.code === 'IDP_ERROR') return { transient: true, code: error.code };
    return { transient: false, code: error.code, reason: error.code.toLowerCase() };
  }
  return { transient: true, code: 'INTERNAL' };
}
