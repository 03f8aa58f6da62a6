/**
 * OAuth 2.0 Authorization Server Metadata (RFC 8414), read only to complete an OpenID discovery document:
 * the OpenID document does not define `revocation_endpoint` or `device_authorization_endpoint`, and some
 * providers publish them (and sometimes `end_session_endpoint`) only in their RFC 8414 document.
 */
import type { HttpClient } from './http.js';
import type { OptionalEndpoint } from './provider-metadata.js';
import { classifyHttpFailure, parseJsonObject } from './provider-error.js';

/** RFC 8414 §3: the well-known suffix registered for authorization server metadata. */
export const OAUTH_AUTHORIZATION_SERVER_PATH = '/.well-known/oauth-authorization-server';

/** The metadata field of each optional endpoint (RFC 8414 §2, RFC 8628 §4, OIDC RP-Initiated Logout §2.1). */
export const OPTIONAL_ENDPOINT_FIELDS: Readonly<Record<OptionalEndpoint, string>> = {
  revocationEndpoint: 'revocation_endpoint',
  endSessionEndpoint: 'end_session_endpoint',
  deviceAuthorizationEndpoint: 'device_authorization_endpoint',
};

/**
 * Where to look, in order. RFC 8414 §3.1: the well-known path is inserted between the host and the issuer's
 * path (a terminating "/" removed first). Some servers serve it appended to the issuer instead, as OpenID
 * Discovery does (RFC 8414 §5 notes that form for compatibility); it is tried second. For an issuer
 * without a path both are the same URL, tried once.
 */
export function authorizationServerMetadataUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/$/, '');
  const inserted = `${url.origin}${OAUTH_AUTHORIZATION_SERVER_PATH}${path}`;
  const appended = `${url.origin}${path}${OAUTH_AUTHORIZATION_SERVER_PATH}`;
  return inserted === appended ? [inserted] : [inserted, appended];
}

export interface AuthorizationServerEndpoints {
  /** The optional endpoints the document names (unvalidated strings; the caller checks them). */
  readonly endpoints: Partial<Record<OptionalEndpoint, unknown>>;
  /** Why nothing (or not everything) could be taken, for `doctor`; undefined when all went well or no document exists. */
  readonly note?: string;
  /** A network failure or 5xx: the answer may differ soon, so the result should not be kept long. */
  readonly transient: boolean;
}

/**
 * Fetches the RFC 8414 document of `issuer` and returns its optional endpoints. RFC 8414 §3.3: the
 * document's `issuer` MUST be identical to the issuer it was looked up for, else it MUST NOT be used.
 * Never throws: a provider without an RFC 8414 document (a 404) is the common case.
 */
export async function fetchAuthorizationServerEndpoints(issuer: string, http: HttpClient): Promise<AuthorizationServerEndpoints> {
  let transient = false;
  for (const url of authorizationServerMetadataUrls(issuer)) {
    let body: string;
    try {
      body = (await http.get(url, { followRedirect: true })).body;
    } catch (error) {
      const details = classifyHttpFailure(error, 'authorization server metadata');
      if (details.kind === 'transient') transient = true;
      continue;
    }
    const document = parseJsonObject(body);
    if (document === undefined) continue;
    if (document['issuer'] !== issuer) {
      return {
        endpoints: {},
        transient,
        note: `${url} names issuer ${JSON.stringify(document['issuer'])}, not exactly ${JSON.stringify(issuer)}: its endpoints were not used (RFC 8414 §3.3)`,
      };
    }
    const endpoints: Partial<Record<OptionalEndpoint, unknown>> = {};
    for (const [name, field] of Object.entries(OPTIONAL_ENDPOINT_FIELDS) as [OptionalEndpoint, string][]) {
      if (document[field] !== undefined && document[field] !== null) endpoints[name] = document[field];
    }
    return { endpoints, transient };
  }
  return { endpoints: {}, transient };
}
