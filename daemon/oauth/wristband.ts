/**
 * The Wristband preset: endpoints derived from the application vanity domain and the tenant, because
 * Wristband documents no discovery document for native apps.
 *
 * Two hosts (https://docs.wristband.dev/docs/domains-and-urls, /reference/url-domains):
 * - the tenant host serves what is bound to the tenant's browser session: authorize and logout;
 * - the application vanity domain serves everything else: token, revoke, userinfo, JWKS, and is the
 *   token issuer (`https://{applicationVanityDomain}`).
 */
import { BrokerError } from '../../proto/errors.js';
import type { ProviderMetadata } from './provider-metadata.js';
import { isLoopbackHost } from './url-rules.js';

/** The Wristband preset's settings, as configured (`profiles.<name>.wristband`). */
export interface WristbandConfig {
  readonly applicationVanityDomain: string;
  readonly tenantDomain?: string;
  readonly tenantName?: string;
  readonly tenantCustomDomain?: string;
  readonly isApplicationCustomDomainActive: boolean;
}

export const WRISTBAND_PATHS = {
  authorize: '/api/v1/oauth2/authorize',
  token: '/api/v1/oauth2/token',
  revoke: '/api/v1/oauth2/revoke',
  userinfo: '/api/v1/oauth2/userinfo',
  jwks: '/api/v1/oauth2/jwks',
  logout: '/api/v1/logout',
} as const;

export interface WristbandMetadataOptions {
  /**
   * Scheme for a loopback host (127.0.0.1, [::1], localhost, with or without a port) — a local IdP
   * standing in for Wristband in tests and demos. Any other host is always https.
   * @default "http"
   */
  readonly loopbackScheme?: 'http' | 'https';
}

/**
 * The tenant host, following Wristband's SDKs (wristband-dev/express-auth, `getOAuthAuthorizeUrl` and
 * `logout`): a tenant custom domain is used as is; a tenant name is joined to the application vanity
 * domain with "-" (`{tenant}-{app}-{company}.us.wristband.dev`), or with "." when the application's
 * custom domain is active (`{tenant}.{app custom domain}`). `tenantDomain` is an already complete host
 * (a single label without dots is taken as a tenant name).
 */
export function wristbandTenantHost(w: WristbandConfig): string {
  if (w.tenantCustomDomain !== undefined) return w.tenantCustomDomain;
  // Older Wristband SDKs call the tenant *name* "tenantDomainName": a dotless, non-loopback tenantDomain
  // cannot be a reachable host, so it is read as a name.
  const name = w.tenantName ?? (w.tenantDomain !== undefined && isTenantLabel(w.tenantDomain) ? w.tenantDomain : undefined);
  if (name !== undefined) {
    const separator = w.isApplicationCustomDomainActive ? '.' : '-';
    return `${name}${separator}${w.applicationVanityDomain}`;
  }
  if (w.tenantDomain !== undefined) return w.tenantDomain;
  throw new BrokerError('CONFIG_INVALID', 'wristband: set one of tenantDomain, tenantName or tenantCustomDomain', {
    field: 'wristband.tenantDomain',
  });
}

function isTenantLabel(host: string): boolean {
  const hostname = host.replace(/:\d+$/, '');
  return !hostname.includes('.') && !isLoopbackHost(hostname);
}

function origin(host: string, field: string, loopbackScheme: 'http' | 'https'): string {
  let url: URL;
  try {
    url = new URL(`https://${host}`);
  } catch {
    throw new BrokerError('CONFIG_INVALID', `wristband.${field}: ${JSON.stringify(host)} is not a host name`, { field: `wristband.${field}` });
  }
  if (url.host !== host.toLowerCase() || url.pathname !== '/' || url.username !== '' || url.password !== '') {
    throw new BrokerError('CONFIG_INVALID', `wristband.${field}: expected a bare host name (no scheme, path or credentials)`, {
      field: `wristband.${field}`,
    });
  }
  const scheme = isLoopbackHost(url.hostname) ? loopbackScheme : 'https';
  return `${scheme}://${url.host}`;
}

/** Derives the preset's metadata; no network. */
export function wristbandMetadata(w: WristbandConfig, options: WristbandMetadataOptions = {}): ProviderMetadata {
  const loopbackScheme = options.loopbackScheme ?? 'http';
  const app = origin(w.applicationVanityDomain, 'applicationVanityDomain', loopbackScheme);
  const tenantField = w.tenantCustomDomain !== undefined ? 'tenantCustomDomain' : w.tenantDomain !== undefined ? 'tenantDomain' : 'tenantName';
  const tenant = origin(wristbandTenantHost(w), tenantField, loopbackScheme);
  return {
    issuer: app,
    authorizationEndpoint: tenant + WRISTBAND_PATHS.authorize,
    tokenEndpoint: app + WRISTBAND_PATHS.token,
    revocationEndpoint: app + WRISTBAND_PATHS.revoke,
    endSessionEndpoint: tenant + WRISTBAND_PATHS.logout,
    userinfoEndpoint: app + WRISTBAND_PATHS.userinfo,
    jwksUri: app + WRISTBAND_PATHS.jwks,
    logoutStyle: 'wristband',
    // Not advertised by Wristband: an `iss` in the response is still checked when present (RFC 9207 §2.4).
    authorizationResponseIssParameterSupported: false,
    // Wristband signs access and ID tokens with RS256.
    idTokenSigningAlgValuesSupported: ['RS256'],
  };
}
