/**
 * Client authentication at the token and revocation endpoints (RFC 6749 §2.3.1, OIDC Core §9). A native
 * app is a public client (RFC 8252 §8.4) and sends only `client_id`; some providers still issue a
 * "secret" to installed apps (Google's desktop clients) and require it. It is not confidential there —
 * anyone can read it from the app — but it is handled as a secret all the same: wrapped, never logged.
 */
import type { Secret } from '../secret.js';

export interface ClientAuthentication {
  /** RFC 6749 §2.3.1: HTTP Basic (which servers MUST support) or the secret in the form body. */
  readonly method: 'client_secret_basic' | 'client_secret_post';
  readonly secret: Secret;
}

/**
 * Adds the client's credentials to a token or revocation request: `client_id` always goes in the form
 * (RFC 6749 §4.1.3; harmless with Basic), the secret in the form or in an `Authorization: Basic` header
 * whose parts are form-urlencoded first (RFC 6749 §2.3.1).
 */
export function authenticateClient(
  form: Record<string, string>,
  clientId: string,
  auth: ClientAuthentication | undefined,
): { readonly form: Record<string, string>; readonly headers: Record<string, string> } {
  const withId = { ...form, client_id: clientId };
  if (auth === undefined) return { form: withId, headers: {} };
  if (auth.method === 'client_secret_post') return { form: { ...withId, client_secret: auth.secret.reveal() }, headers: {} };
  const encode = (value: string) => new URLSearchParams({ v: value }).toString().slice(2);
  const basic = Buffer.from(`${encode(clientId)}:${encode(auth.secret.reveal())}`).toString('base64');
  return { form: withId, headers: { authorization: `Basic ${basic}` } };
}

/** A profile's client authentication: undefined for a public client (`tokenEndpointAuthMethod` "none"). */
export function clientAuthentication(profile: {
  readonly clientSecret?: Secret;
  readonly tokenEndpointAuthMethod: 'none' | ClientAuthentication['method'];
}): ClientAuthentication | undefined {
  if (profile.tokenEndpointAuthMethod === 'none' || profile.clientSecret === undefined) return undefined;
  return { method: profile.tokenEndpointAuthMethod, secret: profile.clientSecret };
}
