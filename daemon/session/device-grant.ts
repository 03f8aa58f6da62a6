/**
 * The end of a device sign-in (RFC 8628 §3.5): the token response of the poll the user approved,
 * checked exactly as after a browser sign-in (token-requests.ts `authorizationCodeGrant`) and turned
 * into the `StoredTokens` the session keeps. The only difference: the device authorization request
 * carries no nonce (RFC 8628 §3.1 defines none), so none is expected in the ID token.
 */
import { BrokerError } from '../../proto/index.js';
import { validateIdToken, type ProviderMetadata } from '../oauth/index.js';
import { MAX_EXPIRES_IN_SECONDS } from '../oauth/token-endpoint.js';
import type { StoredTokens } from '../store/types.js';
import type { DeviceTokens } from './device-login.js';
import { conservativeExpiry } from './schedule.js';
import { ClockSkewError, clockSkewMs, isTimeClaimFailure, type TokenRequestDeps } from './token-requests.js';

export async function deviceCodeGrant(deps: TokenRequestDeps, metadata: ProviderMetadata, tokens: DeviceTokens): Promise<StoredTokens> {
  const { profile, now } = deps;
  const { set, sentAt, receivedAt } = tokens;
  if (set.expiresInClamped !== undefined) {
    deps.log?.warn(
      { profile: profile.name, expiresIn: set.expiresInClamped, usedSeconds: MAX_EXPIRES_IN_SECONDS },
      `the provider's expires_in is above the bound of ${MAX_EXPIRES_IN_SECONDS} s (one year); the token is treated as living that long`,
    );
  }
  if (!set.idToken) throw new BrokerError('LOGIN_FAILED', `${profile.name}: the provider returned no ID token (is "openid" in scopes?)`);
  // OIDC Core §3.1.3.7: signature, iss, aud, azp, exp, iat, at_hash — everything but the nonce.
  const claims = await validateIdToken(set.idToken, { metadata, clientId: profile.clientId, accessToken: set.accessToken, now }).catch((error: unknown) => {
    const skew = clockSkewMs(set.providerDate, sentAt, receivedAt);
    if (isTimeClaimFailure(error) && skew !== undefined) throw new ClockSkewError(error, skew);
    throw error;
  });
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
    issuer: profile.issuer,
    clientId: profile.clientId,
  };
}
