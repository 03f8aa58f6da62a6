/**
 * Tokens are bound to the issuer and client id that issued them: a profile later pointed at another issuer
 * (or client) must not send them there — not to the token endpoint, not to the revocation endpoint. The
 * keychain entry records the binding (`issuer`, `clientId`). Entries written before it was recorded carry
 * it anyway, in their ID token (`iss`, `aud`): read from the keychain, the broker's own store, so its
 * claims are taken as written (the token was validated when it was stored). An entry with neither is
 * treated as bound to nothing: a new sign-in is required.
 */
import type { ProfileConfig } from '../config.js';
import type { StoredTokens } from '../store/types.js';

/** Why stored tokens cannot be used with this profile: `issuer_changed`, `client_changed`, `binding_unknown`; undefined when they can. */
export type BindingProblem = 'issuer_changed' | 'client_changed' | 'binding_unknown';

export function bindingProblem(tokens: StoredTokens, profile: Pick<ProfileConfig, 'issuer' | 'clientId'>): BindingProblem | undefined {
  const bound = tokens.issuer !== undefined || tokens.clientId !== undefined ? { issuer: tokens.issuer, audiences: [tokens.clientId] } : fromIdToken(tokens);
  if (bound === undefined || bound.issuer === undefined) return 'binding_unknown';
  if (bound.issuer !== profile.issuer) return 'issuer_changed';
  if (!bound.audiences.includes(profile.clientId)) return 'client_changed';
  return undefined;
}

/** The binding of an entry written before it was recorded: its ID token's `iss` and `aud`. */
function fromIdToken(tokens: StoredTokens): { issuer: string | undefined; audiences: Array<string | undefined> } | undefined {
  const payload = tokens.idToken?.reveal().split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { iss?: unknown; aud?: unknown };
    const audiences = (Array.isArray(claims.aud) ? claims.aud : [claims.aud]).filter((a): a is string => typeof a === 'string');
    return { issuer: typeof claims.iss === 'string' ? claims.iss : undefined, audiences };
  } catch {
    return undefined;
  }
}
