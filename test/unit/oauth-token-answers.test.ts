/**
 * Token answers as providers really send them (RFC 6749 §5.1 leaves much optional): no `expires_in` (the
 * JWT access token's `exp`, else the documented default), `expires_in` as a string, `token_type` in
 * another case, no `scope`.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_EXPIRES_IN_SECONDS, jwtLifetimeSeconds, parseTokenResponse } from '../../daemon/oauth/token-endpoint.js';

const NOW = 1_800_000_000_000;
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const jwt = (payload: Record<string, unknown>) => `${b64({ alg: 'RS256', typ: 'at+jwt' })}.${b64(payload)}.c2lnbmF0dXJl`;
const answer = (extra: Record<string, unknown>) => JSON.stringify({ access_token: 'opaque-AT', token_type: 'Bearer', ...extra });

describe('a token answer without expires_in', () => {
  it("takes the lifetime from a JWT access token's exp (RFC 9068 §2.2)", () => {
    const set = parseTokenResponse(JSON.stringify({ access_token: jwt({ sub: 'a', exp: NOW / 1000 + 900 }), token_type: 'Bearer' }), [], NOW);
    expect(set.expiresAt).toBe(NOW + 900_000);
  });

  it('falls back to the documented default for an opaque token', () => {
    expect(DEFAULT_EXPIRES_IN_SECONDS).toBe(300);
    expect(parseTokenResponse(answer({}), [], NOW).expiresAt).toBe(NOW + 300_000);
  });

  it('falls back to the default for a JWT whose exp is missing, not a number, or past', () => {
    for (const payload of [{ sub: 'a' }, { exp: 'soon' }, { exp: NOW / 1000 - 1 }]) {
      expect(parseTokenResponse(answer({ access_token: jwt(payload) }), [], NOW).expiresAt).toBe(NOW + 300_000);
    }
    expect(jwtLifetimeSeconds('a.not-base64-json.c', NOW)).toBeUndefined();
  });

  it('prefers expires_in when both are there', () => {
    expect(parseTokenResponse(answer({ access_token: jwt({ exp: NOW / 1000 + 900 }), expires_in: 60 }), [], NOW).expiresAt).toBe(NOW + 60_000);
  });
});

describe('other shapes of a token answer', () => {
  it('accepts expires_in as a string of digits', () => {
    expect(parseTokenResponse(answer({ expires_in: '120' }), [], NOW).expiresAt).toBe(NOW + 120_000);
    expect(() => parseTokenResponse(answer({ expires_in: '2 minutes' }), [], NOW)).toThrow(/expires_in/);
  });

  it('accepts token_type in any case and normalises it to "Bearer" (RFC 6749 §7.1)', () => {
    expect(parseTokenResponse(answer({ token_type: 'bearer', expires_in: 60 }), [], NOW).tokenType).toBe('Bearer');
    expect(parseTokenResponse(answer({ token_type: 'BEARER', expires_in: 60 }), [], NOW).tokenType).toBe('Bearer');
  });

  it('without scope means the scopes asked for (RFC 6749 §5.1)', () => {
    expect(parseTokenResponse(answer({ expires_in: 60 }), ['openid', 'email'], NOW).scopes).toEqual(['openid', 'email']);
  });

  it('without refresh_token or id_token: neither is made up', () => {
    const set = parseTokenResponse(answer({ expires_in: 60 }), [], NOW);
    expect(set.refreshToken).toBeUndefined();
    expect(set.idToken).toBeUndefined();
  });
});
