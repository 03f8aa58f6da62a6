/**
 * Provider metadata: where the endpoints are and what the provider promises. Learned by OpenID Connect
 * Discovery for any OIDC provider, or derived from the Wristband preset (which documents no discovery).
 */
import { BrokerError } from '../../proto/errors.js';
import type { HttpClient } from './http.js';
import { OPTIONAL_ENDPOINT_FIELDS, fetchAuthorizationServerEndpoints } from './authorization-server-metadata.js';
import type { EndpointSource, OptionalEndpoint, ProviderMetadata } from './provider-metadata.js';
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
    const published = document['issuer'];
    // Issuers are compared as strings (OIDC Core §3.1.3.7 step 2): "https://x/" is not "https://x".
    const slashOnly = typeof published === 'string' && published.replace(/\/$/, '') === expectedIssuer.replace(/\/$/, '');
    throw invalid(
      'issuer',
      `is ${JSON.stringify(published)}, expected exactly ${JSON.stringify(expectedIssuer)} (OIDC Discovery §4.3)` +
        (slashOnly
          ? `; issuers are compared character for character, so set the profile's issuer to ${JSON.stringify(published)}, trailing "/" as published`
          : ''),
    );
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
  // RFC 8628 §4 defines it for RFC 8414 metadata; providers with the device flow list it here too.
  const deviceAuthorizationEndpoint = optionalEndpoint(document['device_authorization_endpoint'], 'device_authorization_endpoint');
  const endpointSources: Partial<Record<OptionalEndpoint, EndpointSource>> = {};
  if (revocationEndpoint !== undefined) endpointSources.revocationEndpoint = 'openid-configuration';
  if (endSessionEndpoint !== undefined) endpointSources.endSessionEndpoint = 'openid-configuration';
  if (deviceAuthorizationEndpoint !== undefined) endpointSources.deviceAuthorizationEndpoint = 'openid-configuration';
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
    endpointSources,
  };
}

const OPTIONAL_ENDPOINTS = Object.keys(OPTIONAL_ENDPOINT_FIELDS) as OptionalEndpoint[];

/**
 * Completes OpenID metadata with the endpoints it lacks from the provider's RFC 8414 document (same
 * issuer required). `transient` says the RFC 8414 lookup failed for a reason that may pass.
 */
export async function completeFromAuthorizationServerMetadata(
  metadata: ProviderMetadata,
  http: HttpClient,
): Promise<{ readonly metadata: ProviderMetadata; readonly transient: boolean }> {
  const missing = OPTIONAL_ENDPOINTS.filter((name) => metadata[name] === undefined);
  if (missing.length === 0) return { metadata, transient: false };
  const found = await fetchAuthorizationServerEndpoints(metadata.issuer, http);
  const added: Partial<Record<OptionalEndpoint, string>> = {};
  const sources: Partial<Record<OptionalEndpoint, EndpointSource>> = { ...metadata.endpointSources };
  const notes = [...(metadata.notes ?? [])];
  for (const name of missing) {
    const value = found.endpoints[name];
    if (value === undefined) continue;
    try {
      added[name] = checkEndpointUrl(value, `${OPTIONAL_ENDPOINT_FIELDS[name]} (RFC 8414 metadata)`);
      sources[name] = 'oauth-authorization-server';
    } catch (error) {
      notes.push((error as Error).message);
    }
  }
  if (found.note !== undefined) notes.push(found.note);
  return {
    metadata: { ...metadata, ...added, endpointSources: sources, ...(notes.length === 0 ? {} : { notes }) },
    transient: found.transient,
  };
}

/**
 * Fills the endpoints the provider offers nowhere from the profile's config (the last resort: a provider
 * that publishes an endpoint wins over the config).
 */
export function withConfiguredEndpoints(metadata: ProviderMetadata, profile: ProviderSource): ProviderMetadata {
  const added: Partial<Record<OptionalEndpoint, string>> = {};
  const sources: Partial<Record<OptionalEndpoint, EndpointSource>> = { ...metadata.endpointSources };
  for (const name of OPTIONAL_ENDPOINTS) {
    const configured = profile[name];
    if (configured === undefined || metadata[name] !== undefined) continue;
    added[name] = configured;
    sources[name] = 'config';
  }
  return Object.keys(added).length === 0 ? metadata : { ...metadata, ...added, endpointSources: sources };
}

/**
 * Fetches and validates `{issuer}/.well-known/openid-configuration` (OIDC Discovery §4), then completes it
 * from the provider's RFC 8414 metadata when it lacks an optional endpoint.
 */
export async function discover(issuer: string, http: HttpClient): Promise<ProviderMetadata> {
  return (await discoverComplete(issuer, http)).metadata;
}

async function discoverComplete(issuer: string, http: HttpClient): Promise<{ readonly metadata: ProviderMetadata; readonly transient: boolean }> {
  return completeFromAuthorizationServerMetadata(await discoverOpenId(issuer, http), http);
}

/** The OpenID discovery document alone (OIDC Discovery §4). */
export async function discoverOpenId(issuer: string, http: HttpClient): Promise<ProviderMetadata> {
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
  /** Endpoints named in the config, used only where the provider names none. */
  readonly revocationEndpoint?: string;
  readonly endSessionEndpoint?: string;
  readonly deviceAuthorizationEndpoint?: string;
}

export interface ResolveOptions {
  /** How long discovered metadata is reused. @default 3600000 (1 hour) */
  readonly ttlMs?: number;
  /** How long metadata is reused when its RFC 8414 lookup failed for a passing reason. @default 60000 */
  readonly incompleteTtlMs?: number;
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
    return new Promise((resolve) => resolve(withConfiguredEndpoints(wristbandMetadata(wristband, options.wristband), profile)));
  }
  const now = (options.now ?? Date.now)();
  const cached = discoveryCache.get(profile.issuer);
  if (cached !== undefined && cached.expiresAt > now) return cached.metadata.then((metadata) => withConfiguredEndpoints(metadata, profile));
  const complete = discoverComplete(profile.issuer, http);
  const metadata = complete.then((c) => c.metadata);
  const entry: CacheEntry = { expiresAt: now + (options.ttlMs ?? 3_600_000), metadata };
  discoveryCache.set(profile.issuer, entry);
  complete.then(
    (c) => {
      // An RFC 8414 lookup that failed for a passing reason is tried again soon, not in an hour.
      if (c.transient && discoveryCache.get(profile.issuer) === entry) {
        discoveryCache.set(profile.issuer, { ...entry, expiresAt: now + (options.incompleteTtlMs ?? 60_000) });
      }
    },
    () => {
      if (discoveryCache.get(profile.issuer) === entry) discoveryCache.delete(profile.issuer);
    },
  );
  return metadata.then((m) => withConfiguredEndpoints(m, profile));
}
