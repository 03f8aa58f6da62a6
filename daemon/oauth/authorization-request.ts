/**
 * The authorization request the browser is sent to (RFC 6749 §4.1.1, OIDC Core §3.1.2.1), with PKCE
 * (RFC 7636 §4.3), `state` and `nonce`.
 */
import { BrokerError } from '../../proto/errors.js';
import { Secret } from '../secret.js';
import type { ProviderMetadata } from './provider-metadata.js';
import { calculateCodeChallenge, generateCodeVerifier, randomUrlSafe } from './pkce.js';

/** Parameters the broker sets itself; `extraParams` cannot replace them. */
export const RESERVED_AUTHORIZATION_PARAMS: readonly string[] = [
  'client_id',
  'response_type',
  'redirect_uri',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
];

export interface AuthorizationRequestOptions {
  readonly metadata: ProviderMetadata;
  readonly clientId: string;
  /** The concrete redirect URI (a custom-scheme URI, or the loopback URI with its port). */
  readonly redirectUri: string;
  readonly scopes: readonly string[];
  /** Further parameters such as `prompt` or `login_hint`. @default {} */
  readonly extraParams?: Readonly<Record<string, string>>;
}

export interface AuthorizationRequest {
  /** The URL to open in the browser. */
  readonly url: string;
  /** Bound to this request; compare with the response's `state` (RFC 6749 §10.12). 43 characters. */
  readonly state: string;
  /** Compare with the ID token's `nonce` (OIDC Core §3.1.3.7 step 11). 43 characters. */
  readonly nonce: Secret;
  /** Sent with the code at the token endpoint (RFC 7636 §4.5). */
  readonly codeVerifier: Secret;
}

/**
 * Builds the authorization URL. `state` (Wristband: 22–512 characters) and `nonce` (22–128) are 43
 * base64url characters of 32 random bytes each.
 */
export function createAuthorizationRequest(options: AuthorizationRequestOptions): AuthorizationRequest {
  const extraParams = options.extraParams ?? {};
  for (const name of Object.keys(extraParams)) {
    if (RESERVED_AUTHORIZATION_PARAMS.includes(name)) {
      throw new BrokerError('BAD_REQUEST', `authorization parameter "${name}" is set by the broker and cannot be overridden`, {
        field: `authorizationParams.${name}`,
      });
    }
  }
  if (options.scopes.length === 0) {
    throw new BrokerError('BAD_REQUEST', 'at least one scope is needed (OIDC Core §3.1.2.1 requires "openid")', { field: 'scopes' });
  }
  const state = randomUrlSafe();
  const nonce = new Secret(randomUrlSafe());
  // RFC 7636 §4.1–4.2: a fresh verifier per request, sent only as its S256 challenge.
  const codeVerifier = generateCodeVerifier();

  // RFC 6749 §3.1: a query already in the endpoint URI is retained.
  const url = new URL(options.metadata.authorizationEndpoint);
  for (const [name, value] of Object.entries(extraParams)) url.searchParams.set(name, value);
  const params: Record<string, string> = {
    client_id: options.clientId,
    response_type: 'code', // RFC 6749 §4.1.1
    redirect_uri: options.redirectUri,
    scope: options.scopes.join(' '), // RFC 6749 §3.3
    state, // RFC 6749 §4.1.1, §10.12
    nonce: nonce.reveal(), // OIDC Core §3.1.2.1
    code_challenge: calculateCodeChallenge(codeVerifier), // RFC 7636 §4.3
    code_challenge_method: 'S256', // RFC 7636 §4.3
  };
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return { url: url.toString(), state, nonce, codeVerifier };
}
