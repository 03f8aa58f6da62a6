/**
 * Token revocation (RFC 7009) as a public client. Logout must go on when it fails, so expected failures
 * come back as a result for the caller to log, not as an exception.
 */
import type { Secret } from '../secret.js';
import { authenticateClient, type ClientAuthentication } from './client-auth.js';
import type { HttpClient } from './http.js';
import type { ProviderMetadata } from './metadata.js';
import { classifyHttpFailure, type FailureKind } from './provider-error.js';

/** Why logout could not revoke when the provider offers no revocation endpoint, and what that means. */
export const NO_REVOCATION_ENDPOINT =
  'the provider offers no revocation endpoint (none in its OpenID discovery document or RFC 8414 metadata, and no ' +
  '"revocationEndpoint" in the profile): the refresh token was deleted here but stays valid at the provider until it expires';

export interface RevokeTokenOptions {
  readonly http: HttpClient;
  readonly metadata: ProviderMetadata;
  readonly clientId: string;
  /** RFC 7009 §2.1: the client authenticates as at the token endpoint (a secret only when the provider requires one). */
  readonly clientAuth?: ClientAuthentication;
  readonly token: Secret;
  /** RFC 7009 §2.1: a hint; the server may ignore it. */
  readonly tokenTypeHint: 'refresh_token' | 'access_token';
}

export type RevocationResult =
  | { readonly revoked: true }
  | {
      readonly revoked: false;
      /** Why, safe to log: "unsupported" (no revocation endpoint) or the classified failure. */
      readonly reason: 'unsupported' | FailureKind;
      readonly message: string;
      readonly status?: number;
      readonly oauthError?: string;
      readonly retryAfterMs?: number;
    };

/**
 * RFC 7009 §2.1: POST token + token_type_hint (+ client_id for a public client). §2.2: HTTP 200 means
 * done — also for a token that was already invalid. A 503 (§2.2.1) or other transient failure is retried
 * by the HTTP client first.
 */
export async function revokeToken(options: RevokeTokenOptions): Promise<RevocationResult> {
  const endpoint = options.metadata.revocationEndpoint;
  if (endpoint === undefined) {
    return { revoked: false, reason: 'unsupported', message: NO_REVOCATION_ENDPOINT };
  }
  try {
    const request = authenticateClient({ token: options.token.reveal(), token_type_hint: options.tokenTypeHint }, options.clientId, options.clientAuth);
    await options.http.post(endpoint, { form: request.form, headers: request.headers });
    return { revoked: true };
  } catch (error) {
    const details = classifyHttpFailure(error, 'revocation endpoint');
    return {
      revoked: false,
      reason: details.kind,
      message: details.message,
      ...(details.status === undefined ? {} : { status: details.status }),
      ...(details.oauthError === undefined ? {} : { oauthError: details.oauthError }),
      ...(details.retryAfterMs === undefined ? {} : { retryAfterMs: details.retryAfterMs }),
    };
  }
}
