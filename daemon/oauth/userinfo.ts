/**
 * The UserInfo endpoint (OIDC Core §5.3), asked only for what the ID token left out: some providers put
 * nothing but `sub` in the ID token and the user's email and name only here.
 */
import type { Secret } from '../secret.js';
import type { HttpClient } from './http.js';
import { parseJsonObject } from './provider-error.js';

export interface UserinfoClaims {
  readonly email?: string;
  readonly preferredUsername?: string;
}

/**
 * OIDC Core §5.3.1: GET with the access token as a Bearer token. §5.3.2: the `sub` of the answer MUST equal
 * the ID token's, else the answer MUST NOT be used. Never throws: the sign-in does not depend on it.
 */
export async function fetchUserinfo(http: HttpClient, endpoint: string, accessToken: Secret, subject: string): Promise<UserinfoClaims | undefined> {
  try {
    const response = await http.get(endpoint, { headers: { authorization: `Bearer ${accessToken.reveal()}`, accept: 'application/json' } });
    const claims = parseJsonObject(response.body);
    if (claims === undefined || claims['sub'] !== subject) return undefined;
    const email = typeof claims['email'] === 'string' ? claims['email'] : undefined;
    const preferredUsername = typeof claims['preferred_username'] === 'string' ? claims['preferred_username'] : undefined;
    return { ...(email === undefined ? {} : { email }), ...(preferredUsername === undefined ? {} : { preferredUsername }) };
  } catch {
    return undefined;
  }
}
