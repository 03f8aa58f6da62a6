/**
 * Proof Key for Code Exchange (RFC 7636) and the other one-time random values of a login.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Secret } from '../secret.js';

/** Bytes of entropy in a verifier, state and nonce: 32 bytes → 43 base64url characters. */
export const RANDOM_VALUE_BYTES = 32;

/** A 43-character base64url string of 32 random bytes (RFC 7636 §4.1's recommendation, also used for state and nonce). */
export function randomUrlSafe(bytes: Uint8Array = randomBytes(RANDOM_VALUE_BYTES)): string {
  return Buffer.from(bytes).toString('base64url');
}

/**
 * RFC 7636 §4.1: code_verifier = base64url(32 random octets) — 43 characters from the unreserved set.
 * `bytes` is for the Appendix B test vector; leave it out in real use.
 */
export function generateCodeVerifier(bytes?: Uint8Array): Secret {
  return new Secret(randomUrlSafe(bytes));
}

/** RFC 7636 §4.2: code_challenge = BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) for method S256. */
export function calculateCodeChallenge(codeVerifier: Secret): string {
  return createHash('sha256').update(codeVerifier.reveal(), 'ascii').digest('base64url');
}
