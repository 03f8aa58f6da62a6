/**
 * When the session's ID token was issued and expires, read from its claims. The token was validated when
 * it arrived (OIDC Core §3.1.3.7, or §12.2 after a refresh); this only reads `iat` and `exp` again to
 * decide whether it may still be handed out.
 */
import type { Secret } from '../secret.js';

export interface IdTokenTimes {
  /** `iat`, epoch ms. */
  readonly issuedAt: number;
  /** `exp`, epoch ms. */
  readonly expiresAt: number;
}

/** `iat`/`exp` of a compact JWT (RFC 7519 §4.1.4, §4.1.6); undefined when unreadable. */
export function idTokenTimes(idToken: Secret): IdTokenTimes | undefined {
  const payload = idToken.reveal().split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { iat?: unknown; exp?: unknown };
    if (typeof claims.exp !== 'number' || !Number.isFinite(claims.exp)) return undefined;
    const exp = claims.exp * 1000;
    const iat = typeof claims.iat === 'number' && Number.isFinite(claims.iat) ? claims.iat * 1000 : exp;
    return { issuedAt: Math.min(iat, exp), expiresAt: exp };
  } catch {
    return undefined;
  }
}
