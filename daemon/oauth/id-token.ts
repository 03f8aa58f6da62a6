/**
 * ID token validation (OIDC Core §3.1.3.7) with jose: signature against the provider's JWKS, then the
 * claims. After a refresh (OIDC Core §12.2) the same checks apply, the nonce is not expected, and the
 * subject must not change.
 */
import { createHash } from 'node:crypto';
import type * as JoseModule from 'jose';
import type {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  JWTPayload,
  FlattenedJWSInput,
  JWSHeaderParameters,
  JWTVerifyGetKey,
  JWTVerifyOptions,
  JWTVerifyResult,
} from 'jose';
import { BrokerError } from '../../proto/errors.js';
import type { Secret } from '../secret.js';
import { packageVersion } from '../version.js';
import type { ProviderMetadata } from './metadata.js';

/** Asymmetric algorithms only: `none` and HS* (keyed with the client secret a public client lacks) are refused. */
export const ID_TOKEN_ALGORITHMS: readonly string[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

export interface ValidateIdTokenOptions {
  readonly metadata: ProviderMetadata;
  readonly clientId: string;
  /** The nonce of the authorization request; required after a login, left out after a refresh. */
  readonly nonce?: Secret;
  /** After a refresh: the `sub` of the session's first ID token (OIDC Core §12.2). */
  readonly expectedSubject?: string;
  /** When given and the token has `at_hash`, the access token must match it (OIDC Core §3.1.3.8). */
  readonly accessToken?: Secret;
  /** Allowed clock difference for `exp` and `iat`. @default 60 */
  readonly clockToleranceSeconds?: number;
  /** Clock, for tests. @default Date.now */
  readonly now?: () => number;
}

export interface IdTokenClaims {
  readonly sub: string;
  readonly email?: string;
  readonly name?: string;
  /** Seconds since the epoch. */
  readonly exp: number;
  readonly iat: number;
  /** Every claim, for provider-specific ones (Wristband's tenant_id, for example). */
  readonly claims: Readonly<JWTPayload>;
}

type Jose = typeof JoseModule;

/**
 * jose is loaded when the first ID token is checked (a sign-in, a refresh that brings one), not at start:
 * an idle daemon does not pay its memory (see bench/README.md, memory).
 */
let joseModule: Promise<Jose> | undefined;
export const loadJose = (): Promise<Jose> => (joseModule ??= import('jose'));

const jwksCache = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

/** One key set per `jwks_uri`; jose refetches (with a cooldown) when a token names an unknown `kid`. */
function remoteKeySet(jose: Jose, jwksUri: string): ReturnType<typeof createRemoteJWKSet> {
  let keySet = jwksCache.get(jwksUri);
  if (keySet === undefined) {
    keySet = jose.createRemoteJWKSet(new URL(jwksUri), {
      timeoutDuration: 10_000,
      headers: { accept: 'application/json', 'user-agent': `tokenbroker/${packageVersion()}` },
    });
    jwksCache.set(jwksUri, keySet);
  }
  return keySet;
}

/** Forgets fetched key sets (tests; a config reload). */
export function clearJwksCache(): void {
  jwksCache.clear();
}

function failed(field: string, reason: string): BrokerError {
  return new BrokerError('LOGIN_FAILED', `ID token rejected: ${reason}`, { field: `id_token.${field}` });
}

function allowedAlgorithms(metadata: ProviderMetadata): string[] {
  const advertised = metadata.idTokenSigningAlgValuesSupported;
  const allowed = advertised === undefined ? [...ID_TOKEN_ALGORITHMS] : ID_TOKEN_ALGORITHMS.filter((alg) => advertised.includes(alg));
  if (allowed.length === 0) {
    throw new BrokerError('IDP_ERROR', 'the provider signs ID tokens only with algorithms the broker refuses (none/HS*)', {
      field: 'id_token_signing_alg_values_supported',
    });
  }
  return allowed;
}

/** Turns jose's failure into a reason that names the claim; fetching the key set is an availability problem. */
function translate({ errors }: Jose, error: unknown): BrokerError {
  if (error instanceof BrokerError) return error;
  if (error instanceof errors.JWTExpired) return failed(error.claim, `"${error.claim}" is too old (expired)`);
  if (error instanceof errors.JWTClaimValidationFailed)
    return failed(error.claim, `"${error.claim}" ${error.reason === 'missing' ? 'is missing' : 'does not match'}`);
  if (error instanceof errors.JWSSignatureVerificationFailed) return failed('signature', 'the signature does not verify');
  if (error instanceof errors.JOSEAlgNotAllowed) return failed('alg', 'the signing algorithm is not allowed');
  if (error instanceof errors.JWKSNoMatchingKey) return failed('kid', "no key in the provider's key set matches");
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return failed('format', 'not a well-formed signed JWT');
  if (error instanceof errors.JWKSTimeout) return new BrokerError('IDP_UNAVAILABLE', "the provider's key set (jwks_uri) timed out");
  if (error instanceof errors.JOSEError) {
    // jose's messages are fixed text ("Expected 200 OK from the JSON Web Key Set HTTP response"), never token content.
    return new BrokerError('IDP_ERROR', `the provider's key set (jwks_uri) could not be used: ${error.message.slice(0, 200)} (${error.code})`, {
      field: 'jwks_uri',
    });
  }
  // fetch() itself failed: the network, not the token.
  return new BrokerError('IDP_UNAVAILABLE', `the provider's key set (jwks_uri) could not be fetched: ${(error as Error)?.message ?? String(error)}`);
}

type RemoteKeySet = ReturnType<typeof createRemoteJWKSet>;
type JWKCryptoKey = Awaited<ReturnType<ReturnType<typeof createLocalJWKSet>>>;

/**
 * jwtVerify against the provider's key set, for key sets as providers publish them:
 * - a token without `kid` that several keys could have signed (during a rollover): each is tried
 *   (RFC 7515 §4.1.4: `kid` is only a hint);
 * - keys without `kid` (RFC 7517 §4.5: OPTIONAL) while the token names one: the keys without `kid` of the
 *   token's algorithm are tried. Keys that do carry a `kid` still must match it.
 */
async function verifyWithKeySet(jose: Jose, token: string, keySet: RemoteKeySet, options: JWTVerifyOptions): Promise<JWTVerifyResult> {
  try {
    return await jwtVerifyEach(jose, token, keySet, options);
  } catch (error) {
    if (!(error instanceof jose.errors.JWKSNoMatchingKey)) throw error;
    const kidless = keySet.jwks()?.keys.filter((key) => key.kid === undefined) ?? [];
    if (kidless.length === 0) throw error;
    const local = jose.createLocalJWKSet({ keys: kidless });
    return jwtVerifyEach(
      jose,
      token,
      (header: JWSHeaderParameters, jws: FlattenedJWSInput) => {
        const { kid: _named, ...withoutKid } = header;
        return local(withoutKid, jws);
      },
      options,
    );
  }
}

/** jwtVerify; when several keys match (no `kid`), each is tried in turn (jose leaves that to the caller). */
async function jwtVerifyEach({ errors, jwtVerify }: Jose, token: string, keys: JWTVerifyGetKey, options: JWTVerifyOptions): Promise<JWTVerifyResult> {
  try {
    return await jwtVerify(token, keys, options);
  } catch (error) {
    if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
    let last: unknown = new errors.JWSSignatureVerificationFailed();
    for await (const key of error as errors.JWKSMultipleMatchingKeys & AsyncIterable<JWKCryptoKey>) {
      try {
        return await jwtVerify(token, key, options);
      } catch (keyError) {
        if (!(keyError instanceof errors.JWSSignatureVerificationFailed)) throw keyError;
        last = keyError;
      }
    }
    throw last;
  }
}

const HASH_OF_ALG: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' };

/** OIDC Core §3.1.3.8 / §3.3.2.11: base64url of the left half of the hash of the access token. */
function leftHalfHash(alg: string, value: string): string | undefined {
  const hash = alg === 'EdDSA' || alg === 'Ed25519' ? 'sha512' : HASH_OF_ALG[alg.slice(-3)];
  if (hash === undefined) return undefined;
  const digest = createHash(hash).update(value, 'ascii').digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

/** OIDC Core §3.1.3.7: validates an ID token and returns its claims. Fails with LOGIN_FAILED naming the check. */
export async function validateIdToken(idToken: Secret, options: ValidateIdTokenOptions): Promise<IdTokenClaims> {
  const { metadata, clientId } = options;
  const tolerance = options.clockToleranceSeconds ?? 60;
  const now = (options.now ?? Date.now)();
  let payload: JWTPayload;
  let alg: string;
  const jose = await loadJose();
  const keySet = remoteKeySet(jose, metadata.jwksUri);
  const verifyOptions: JWTVerifyOptions = {
    issuer: metadata.issuer, // §3.1.3.7 step 2: exact match
    audience: clientId, // step 3: aud contains client_id
    algorithms: allowedAlgorithms(metadata), // steps 6–8: signed, with an expected algorithm
    clockTolerance: tolerance, // step 9: exp
    requiredClaims: ['sub', 'exp', 'iat'],
    currentDate: new Date(now),
  };
  const verify = () => verifyWithKeySet(jose, idToken.reveal(), keySet, verifyOptions);
  try {
    let verified: Awaited<ReturnType<typeof verify>>;
    try {
      verified = await verify();
    } catch (error) {
      // Signing-key rotation: jose refetches the key set for an unknown `kid`, but not within its cooldown
      // (30 s after the last fetch, a guard against tokens naming random kids). An ID token only ever comes
      // from the broker's own token-endpoint request, so one forced refetch is safe — and without it a key
      // rotated just after a fetch would end the session as if the token were forged.
      if (!(error instanceof jose.errors.JWKSNoMatchingKey) || !keySet.coolingDown) throw error;
      await keySet.reload();
      verified = await verify();
    }
    payload = verified.payload;
    alg = verified.protectedHeader.alg;
  } catch (error) {
    throw translate(jose, error);
  }

  const aud = payload.aud;
  const audiences = Array.isArray(aud) ? aud : [aud];
  // Steps 4–5: several audiences need an azp; an azp must be us.
  if (payload['azp'] !== undefined && payload['azp'] !== clientId) throw failed('azp', '"azp" is not this client');
  if (audiences.length > 1 && payload['azp'] === undefined) throw failed('azp', 'several audiences but no "azp"');

  // Step 10: iat must be a time, and not in the future.
  if (typeof payload.iat !== 'number' || payload.iat > now / 1000 + tolerance) throw failed('iat', '"iat" is in the future');
  if (typeof payload.sub !== 'string' || payload.sub === '') throw failed('sub', '"sub" is missing');

  // Step 11: the nonce of our request, compared exactly.
  if (options.nonce !== undefined) {
    if (typeof payload['nonce'] !== 'string') throw failed('nonce', '"nonce" is missing');
    if (!options.nonce.equals(payload['nonce'])) throw failed('nonce', '"nonce" does not match the login request');
  }
  // OIDC Core §12.2: a refreshed ID token is about the same user.
  if (options.expectedSubject !== undefined && payload.sub !== options.expectedSubject) {
    throw failed('sub', '"sub" differs from the session\'s user');
  }
  if (options.accessToken !== undefined && typeof payload['at_hash'] === 'string') {
    if (leftHalfHash(alg, options.accessToken.reveal()) !== payload['at_hash']) throw failed('at_hash', '"at_hash" does not match the access token');
  }

  const email = typeof payload['email'] === 'string' ? payload['email'] : undefined;
  const name = typeof payload['name'] === 'string' ? payload['name'] : undefined;
  return {
    sub: payload.sub,
    ...(email === undefined ? {} : { email }),
    ...(name === undefined ? {} : { name }),
    exp: payload.exp as number,
    iat: payload.iat,
    claims: payload,
  };
}
