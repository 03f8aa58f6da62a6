/**
 * The browser URL that ends the provider session: OIDC RP-Initiated Logout, or Wristband's logout
 * endpoint. The broker only builds it; the session layer opens it.
 */
import type { Secret } from '../secret.js';
import type { ProviderMetadata } from './metadata.js';

export interface LogoutUrlOptions {
  readonly clientId: string;
  /** OIDC only: the session's last ID token, so the provider knows whom to log out without asking. */
  readonly idTokenHint?: Secret;
  /** Where the provider sends the browser afterwards; must be registered with the provider. */
  readonly postLogoutRedirectUri?: string;
  /** Echoed back on that redirect. */
  readonly state?: string;
}

/** Returns the logout URL, or undefined when the provider has no logout endpoint. */
export function buildLogoutUrl(metadata: ProviderMetadata, options: LogoutUrlOptions): string | undefined {
  if (metadata.endSessionEndpoint === undefined) return undefined;
  const url = new URL(metadata.endSessionEndpoint);
  const params = url.searchParams;
  if (metadata.logoutStyle === 'wristband') {
    // Wristband: GET /api/v1/logout?client_id=…&redirect_url=…&state=… (client_id is required).
    params.set('client_id', options.clientId);
    if (options.postLogoutRedirectUri !== undefined) params.set('redirect_url', options.postLogoutRedirectUri);
    if (options.state !== undefined) params.set('state', options.state);
    return url.toString();
  }
  // OIDC RP-Initiated Logout 1.0 §2: id_token_hint RECOMMENDED, client_id with post_logout_redirect_uri
  // (and always, so the provider can find the registered URIs when the hint is absent), state optional.
  if (options.idTokenHint !== undefined) params.set('id_token_hint', options.idTokenHint.reveal());
  params.set('client_id', options.clientId);
  if (options.postLogoutRedirectUri !== undefined) params.set('post_logout_redirect_uri', options.postLogoutRedirectUri);
  if (options.state !== undefined) params.set('state', options.state);
  return url.toString();
}
