/**
 * The two token-endpoint calls a session makes, each turned into the `StoredTokens` the session keeps:
 * the authorization-code exchange that ends a login (RFC 6749 §4.1.3, RFC 7636 §4.5) and the refresh
 * (RFC 6749 §6). Expiry is counted conservatively (see `conservativeExpiry`).
 */
import { BrokerError } from '../../proto/index.js';
import type { ProfileConfig } from '../config.js';
import {
  clientAuthentication,
  exchangeAuthorizationCode,
  parseAuthorizationResponse,
  refreshAccessToken,
  validateIdToken,
  ProviderEndpointError,
  type HttpClient,
  type ProviderMetadata,
} from '../oauth/index.js';
import type { Logger } from '../log.js';
import { fetchUserinfo } from '../oauth/userinfo.js';
import { MAX_EXPIRES_IN_SECONDS } from '../oauth/token-endpoint.js';
import type { Secret } from '../secret.js';
import type { StoredTokens } from '../store/types.js';
import type { PendingLogin } from './login-flow.js';
import { conservativeExpiry } from './schedule.js';

export interface TokenRequestDeps {
  readonly profile: ProfileConfig;
  readonly http: HttpClient;
  readonly now: () => number;
  /** Told about answers the broker had to correct (an `expires_in` above the bound). @default ignore */
  readonly log?: Pick<Logger, 'warn'>;
}

export interface Refreshed {
  readonly tokens: StoredTokens;
  /** The provider issued a *different* refresh token (rotation); the old one is dead from now on. */
  readonly rotated: boolean;
  /** The provider's clock minus ours (ms), from the answer's `Date` header; undefined without one. */
  readonly clockSkewMs?: number;
}

export interface RefreshHooks {
  /**
   * Called with a rotated refresh token as soon as the provider's answer is parsed, before any other work
   * (ID-token validation, a JWKS fetch, logging): from that moment it is the only refresh token that works,
   * so it must reach the keychain first. The refresh waits for it.
   */
  readonly keepRotated?: (refreshToken: Secret) => Promise<void>;
}

/**
 * The provider's clock minus ours, in ms: a `Date` header has whole seconds (truncated), so the provider's
 * time was on average half a second later than it says; ours is the middle of the request.
 */
export function clockSkewMs(providerDate: number | undefined, sentAt: number, receivedAt: number): number | undefined {
  if (providerDate === undefined) return undefined;
  return Math.round(providerDate + 500 - (sentAt + receivedAt) / 2);
}

/** ID-token checks that compare a claim with the local clock (OIDC Core §3.1.3.7 steps 9–10). */
const TIME_CLAIM_FIELDS: readonly string[] = ['id_token.exp', 'id_token.iat', 'id_token.nbf'];

export function isTimeClaimFailure(error: unknown): error is BrokerError {
  return error instanceof BrokerError && error.code === 'LOGIN_FAILED' && error.field !== undefined && TIME_CLAIM_FIELDS.includes(error.field);
}

/** A token for less than the whole grant: fewer scopes (RFC 6749 §6), named resource servers (RFC 8707 §2.2). */
export interface Narrowing {
  readonly scopes?: readonly string[];
  readonly resource?: readonly string[];
}

/**
 * RFC 6749 §6: new tokens for `tokens.refreshToken`; the old refresh token is kept when none (or the same) comes back.
 * With `narrow`, the access token asked for is narrower (the session's own tokens are not replaced by the caller).
 */
export async function refreshGrant(
  deps: TokenRequestDeps,
  metadata: ProviderMetadata,
  tokens: StoredTokens & { refreshToken: NonNullable<StoredTokens['refreshToken']> },
  hooks: RefreshHooks = {},
  narrow: Narrowing = {},
): Promise<Refreshed> {
  const { profile, http, now } = deps;
  const sentAt = now();
  const clientAuth = clientAuthentication(profile);
  const set = await refreshAccessToken({
    http,
    metadata,
    clientId: profile.clientId,
    ...(clientAuth === undefined ? {} : { clientAuth }),
    refreshToken: tokens.refreshToken,
    grantedScopes: tokens.scopes,
    now,
    ...(narrow.scopes === undefined ? {} : { scopes: narrow.scopes }),
    ...(narrow.resource === undefined ? {} : { resource: narrow.resource }),
    ...(profile.audienceParam === undefined ? {} : { audienceParam: profile.audienceParam }),
  });
  const receivedAt = now();
  // Providers that do not rotate often send the same refresh token back (oidc-provider does): not a rotation.
  const rotated = set.refreshToken !== undefined && !set.refreshToken.equals(tokens.refreshToken.reveal());
  // Rotation: the old refresh token is spent; the new one is persisted before anything else happens.
  if (rotated && hooks.keepRotated) await hooks.keepRotated(set.refreshToken);
  const skew = clockSkewMs(set.providerDate, sentAt, receivedAt);
  if (set.expiresInClamped !== undefined) warnClamped(deps, set.expiresInClamped);
  let { subject, email } = tokens;
  if (set.idToken) {
    // OIDC Core §12.2: a refreshed ID token must name the same subject.
    const validate = (clock: () => number) =>
      validateIdToken(set.idToken!, { metadata, clientId: profile.clientId, now: clock, ...(subject === undefined ? {} : { expectedSubject: subject }) });
    const claims = await validate(now)
      .catch((error: unknown) => {
        // A time claim fails on our clock: the ID token came straight from the token endpoint, in answer to
        // this request, so the clock to judge it by is the provider's (its Date header). Every other check
        // (signature, iss, aud, azp, sub) still applies. Without a Date header, or if it fails there too,
        // the failure is transient (see below): a wrong clock says nothing about the refresh token.
        if (isTimeClaimFailure(error) && skew !== undefined) return validate(() => now() + skew);
        throw error;
      })
      .catch((error: unknown) => {
        if (isTimeClaimFailure(error)) throw new UnverifiedRefresh(new ClockSkewError(error, skew), rotated ? set.refreshToken : undefined);
        // The key set cannot be fetched just now: the new tokens are not used (a rotated refresh token was
        // already kept by the hook).
        if (classifyRefreshFailure(error).transient) throw new UnverifiedRefresh(error, rotated ? set.refreshToken : undefined);
        throw error;
      });
    subject = claims.sub;
    email = claims.email ?? email;
  }
  const idToken = set.idToken ?? tokens.idToken;
  return {
    rotated,
    ...(skew === undefined ? {} : { clockSkewMs: skew }),
    tokens: {
      accessToken: set.accessToken,
      refreshToken: rotated ? set.refreshToken : tokens.refreshToken,
      ...(idToken ? { idToken } : {}),
      expiresAt: conservativeExpiry(set.expiresAt, sentAt, receivedAt),
      scopes: set.scopes,
      tokenType: set.tokenType,
      ...(subject === undefined ? {} : { subject }),
      ...(email === undefined ? {} : { email }),
      ...(tokens.username === undefined ? {} : { username: tokens.username }),
      savedAt: receivedAt,
      issuer: profile.issuer,
      clientId: profile.clientId,
    },
  };
}

function warnClamped(deps: TokenRequestDeps, expiresIn: number): void {
  deps.log?.warn(
    { profile: deps.profile.name, expiresIn, usedSeconds: MAX_EXPIRES_IN_SECONDS },
    `the provider's expires_in is above the bound of ${MAX_EXPIRES_IN_SECONDS} s (one year); the token is treated as living that long`,
  );
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
  const clientAuth = clientAuthentication(profile);
  const set = await exchangeAuthorizationCode({
    http,
    metadata,
    clientId: profile.clientId,
    ...(clientAuth === undefined ? {} : { clientAuth }),
    code,
    codeVerifier: login.request.codeVerifier,
    redirectUri: login.redirectUri,
    requestedScopes: profile.scopes,
    now,
  }).catch((error: unknown) => {
    if (error instanceof BrokerError && error.code === 'LOGIN_REQUIRED') {
      throw new BrokerError(
        'LOGIN_FAILED',
        `${profile.name}: the provider rejected the authorization code (${(error as ProviderEndpointError).oauthError ?? 'invalid_grant'})`,
      );
    }
    throw error;
  });
  const receivedAt = now();
  if (set.expiresInClamped !== undefined) warnClamped(deps, set.expiresInClamped);
  if (!set.idToken) throw new BrokerError('LOGIN_FAILED', `${profile.name}: the provider returned no ID token (is "openid" in scopes?)`);
  // OIDC Core §3.1.3.7: signature, iss, aud, exp, and the nonce of this very request.
  const claims = await validateIdToken(set.idToken, {
    metadata,
    clientId: profile.clientId,
    nonce: login.request.nonce,
    accessToken: set.accessToken,
    now,
  }).catch((error: unknown) => {
    // A sign-in is not accepted on the provider's clock (the ID token is its only proof), but the message says why.
    const skew = clockSkewMs(set.providerDate, sentAt, receivedAt);
    if (isTimeClaimFailure(error) && skew !== undefined) throw new ClockSkewError(error, skew);
    throw error;
  });
  // OIDC Core §5.3: an ID token with nothing but `sub` (some providers) — the email and preferred_username from
  // the UserInfo endpoint, so that status and the sign-in message name the user rather than an opaque subject.
  let email = claims.email;
  const named = claims.claims['preferred_username'];
  let username = typeof named === 'string' ? named : undefined;
  // Only when the ID token names the user neither way: one request more per sign-in, not for every provider.
  if (email === undefined && username === undefined && metadata.userinfoEndpoint !== undefined) {
    const userinfo = await fetchUserinfo(http, metadata.userinfoEndpoint, set.accessToken, claims.sub);
    email ??= userinfo?.email;
    username ??= userinfo?.preferredUsername;
  }
  return {
    accessToken: set.accessToken,
    ...(set.refreshToken ? { refreshToken: set.refreshToken } : {}),
    idToken: set.idToken,
    expiresAt: conservativeExpiry(set.expiresAt, sentAt, receivedAt),
    scopes: set.scopes,
    tokenType: set.tokenType,
    subject: claims.sub,
    ...(email === undefined ? {} : { email }),
    ...(username === undefined ? {} : { username }),
    savedAt: receivedAt,
    issuer: profile.issuer,
    clientId: profile.clientId,
  };
}

/**
 * The provider answered a refresh, but its ID token could not be checked (a transient failure: the key set
 * is unreachable, or a time claim fails on this machine's clock). The new access token is not used;
 * a rotated `refreshToken` has already been kept (`RefreshHooks.keepRotated`), as the old one is spent.
 * `failure` is what went wrong, classified as usual.
 */
export class UnverifiedRefresh extends Error {
  constructor(
    readonly failure: unknown,
    readonly refreshToken: Secret | undefined,
  ) {
    super('the refreshed ID token could not be verified yet');
  }
}

/**
 * An ID token's `exp`/`iat` check failed on this machine's clock: a wrong clock (after a dual boot, a VM
 * snapshot restored before NTP ran), not a bad token. The message says by how much the clock is off when the
 * provider sent a `Date` header. On refresh it is transient (retried with backoff; the session stays).
 */
export class ClockSkewError extends BrokerError {
  constructor(
    readonly claimFailure: BrokerError,
    readonly skewMs: number | undefined,
  ) {
    super(
      claimFailure.code,
      skewMs === undefined
        ? `${claimFailure.message}; this machine's clock may be wrong (the provider sent no Date header to compare with)`
        : `${claimFailure.message}: ${describeClockSkew(skewMs)}; set the clock right (enable NTP)`,
      claimFailure.field === undefined ? {} : { field: claimFailure.field },
    );
  }
}

export function describeClockSkew(skewMs: number): string {
  const seconds = Math.round(Math.abs(skewMs) / 1000);
  return skewMs >= 0 ? `this machine's clock is ${seconds} s behind the provider's` : `this machine's clock is ${seconds} s ahead of the provider's`;
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
  // A wrong local clock: nothing is wrong with the refresh token; try again later (the clock may be set right).
  if (error instanceof ClockSkewError) return { transient: true, code: 'IDP_ERROR' };
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
