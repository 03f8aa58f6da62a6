/**
 * Provider metadata: where the endpoints are and what the provider promises. Learned by OpenID Connect
 * Discovery for any OIDC provider, or derived from the Wristband preset (which documents no discovery).
 */
import { BrokerError } from '../../proto/errors.js';
import type { HttpClient } from './http.js';
import type { ProviderMetadata } from './provider-metadata.js';
import { ProviderEndpointError, classifyHttpFailure, errorCodeFor, parseJsonObject } from './provider-error.js';
import { isLoopbackHost } from './url-rules.js';
import { wristbandMetadata, type WristbandConfig, type WristbandMetadataOptions } from './wristband.js';

export type { ProviderMetadata } from './provider-metadata.js';

/** The provider metadata document's path (OIDC Discovery §4). */
export const OPENID_CONFIGURATION_PATH = '/.well-known/openid-configuration';

function invalid(field: string, problem: string): BrokerError {
  return new BrokerError('IDP_ERROR', `provider metadata: "${field}" ${problem}`, { field });
}

/** An endpoint must be an absolute https URL without fragment; http only on a loopback host. */
export function checkEndpointUrl(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '') throw invalid(field, 'is missing or not a string');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid(field, 'is not an absolute URL');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw invalid(field, 'must use https (http only on a loopback host)');
  }
  if (url.hash !== '') throw invalid(field, 'must not have a fragment');
  return value;
}

function optionalEndpoint(value: unknown, field: string): string | undefined {
  return value === undefined || value === null ? undefined : checkEndpointUrl(value, field);
}

function optionalStringArray(value: unknown, field: string): readonly string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw invalid(field, 'is not an array of strings');
  return value;
}

/**
 * Validates a discovery document against the configured issuer. PKCE policy: when the provider lists
 * `code_challenge_methods_supported` (RFC 8414 §2) it must include S256; when it omits the field we still
 * send S256 — omission only means "not advertised" (many OIDC providers support PKCE without saying so),
 * and a provider that ignores PKCE still gets a code bound to `state` and `nonce`.
 */
export function parseDiscoveryDocument(document: Record<string, unknown>, expectedIssuer: string): ProviderMetadata {
  // OIDC Discovery §4.3: the issuer in the document MUST exactly equal the one used to fetch it.
  if (document['issuer'] !== expectedIssuer) {
    throw invalid('issuer', `is ${JSON.stringify(document['issuer'])}, expected exactly ${JSON.stringify(expectedIssuer)} (OIDC Discovery §4.3)`);
  }
  const responseTypes = optionalStringArray(document['response_types_supported'], 'response_types_supported');
  if (responseTypes !== undefined && !responseTypes.includes('code')) {
    throw invalid('response_types_supported', 'does not include "code"');
  }
  const challengeMethods = optionalStringArray(document['code_challenge_methods_supported'], 'code_challenge_methods_supported');
  if (challengeMethods !== undefined && !challengeMethods.includes('S256')) {
    throw invalid('code_challenge_methods_supported', 'does not include "S256" (RFC 7636 §4.2)');
  }
  const algs = optionalStringArray(document['id_token_signing_alg_values_supported'], 'id_token_signing_alg_values_supported');
  const revocationEndpoint = optionalEndpoint(document['revocation_endpoint'], 'revocation_endpoint');
  const endSessionEndpoint = optionalEndpoint(document['end_session_endpoint'], 'end_session_endpoint');
  const userinfoEndpoint = optionalEndpoint(document['userinfo_endpoint'], 'userinfo_endpoint');
  const deviceAuthorizationEndpoint = optionalEndpoint(document['device_authorization_endpoint'], 'device_authorization_endpoint');
  return {
    issuer: expectedIssuer,
    authorizationEndpoint: checkEndpointUrl(document['authorization_endpoint'], 'authorization_endpoint'),
    tokenEndpoint: checkEndpointUrl(document['token_endpoint'], 'token_endpoint'),
    ...(revocationEndpoint === undefined ? {} : { revocationEndpoint }),
    ...(endSessionEndpoint === undefined ? {} : { endSessionEndpoint }),
    ...(userinfoEndpoint === undefined ? {} : { userinfoEndpoint }),
    ...(deviceAuthorizationEndpoint === undefined ? {} : { deviceAuthorizationEndpoint }),
    jwksUri: checkEndpointUrl(document['jwks_uri'], 'jwks_uri'),
    logoutStyle: 'oidc',
    // RFC 9207 §3: absent means false.
    authorizationResponseIssParameterSupported: document['authorization_response_iss_parameter_supported'] === true,
    ...(algs === undefined ? {} : { idTokenSigningAlgValuesSupported: algs }),
  };
}

/** Fetches and validates `{issuer}/.well-known/openid-configuration` (OIDC Discovery §4). */
export async function discover(issuer: string, http: HttpClient): Promise<ProviderMetadata> {
  // OIDC Discovery §4.1: remove a terminating "/" before appending the well-known path.
  const url = issuer.replace(/\/$/, '') + OPENID_CONFIGURATION_PATH;
  let body: string;
  try {
    body = (await http.get(url, { followRedirect: true })).body;
  } catch (error) {
    const details = classifyHttpFailure(error, 'discovery document');
    // An OAuth error code means nothing on a discovery document: classify by the failure's kind alone.
    const { oauthError: _notOAuth, ...withoutOAuthError } = details;
    throw new ProviderEndpointError(errorCodeFor(withoutOAuthError), details.message, details);
  }
  const document = parseJsonObject(body);
  if (document === undefined) throw new BrokerError('IDP_ERROR', `provider metadata at ${url} is not a JSON object`);
  return parseDiscoveryDocument(document, issuer);
}

/** What metadata resolution needs to know of a profile (a `ProfileConfig` is one). */
export interface ProviderSource {
  /** The profile's name, for messages. */
  readonly name: string;
  readonly provider: 'oidc' | 'wristband';
  readonly issuer: string;
  readonly wristband?: WristbandConfig;
}

export interface ResolveOptions {
  /** How long discovered metadata is reused. @default 3600000 (1 hour) */
  readonly ttlMs?: number;
  readonly now?: () => number;
  readonly wristband?: WristbandMetadataOptions;
}

interface CacheEntry {
  readonly expiresAt: number;
  readonly metadata: Promise<ProviderMetadata>;
}

const discoveryCache = new Map<string, CacheEntry>();

/** Forgets cached discovery documents (tests; a config reload). */
export function clearProviderMetadataCache(): void {
  discoveryCache.clear();
}

/**
 * The metadata of a profile's provider: derived for the Wristband preset, otherwise discovered and cached
 * per issuer (one fetch shared by concurrent callers; a failure is not cached).
 */
export function resolveProviderMetadata(profile: ProviderSource, http: HttpClient, options: ResolveOptions = {}): Promise<ProviderMetadata> {
  if (profile.provider === 'wristband') {
    if (profile.wristband === undefined) {
      return Promise.reject(new BrokerError('CONFIG_INVALID', `profile ${profile.name}: the wristband preset has no settings`, { field: 'wristband' }));
    }
    const wristband = profile.wristband;
    // A throw inside the executor rejects the promise.
    return new Promise((resolve) => resolve(wristbandMetadata(wristband, options.wristband)));
  }
  const now = (options.now ?? Date.now)();
  const cached = discoveryCache.get(profile.issuer);
  if (cached !== undefined && cached.expiresAt > now) return cached.metadata;
  const metadata = discover(profile.issuer, http);
  const entry: CacheEntry = { expiresAt: now + (options.ttlMs ?? 3_600_000), metadata };
  discoveryCache.set(profile.issuer, entry);
  metadata.catch(() => {
    if (discoveryCache.get(profile.issuer) === entry) discoveryCache.delete(profile.issuer);
  });
  return metadata;
}
