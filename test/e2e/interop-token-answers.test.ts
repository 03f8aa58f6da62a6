/**
 * Token answers as other providers send them, end to end: the real daemon signs in at the test IdP
 * (oidc-provider) through headless Chromium; then the IdP's fault proxy rewrites its refresh answers the way
 * another provider would write them, and apps must go on getting usable tokens.
 *
 * Rows of the quirks matrix (README, section "Providers"): `expires_in` missing (a JWT access token's `exp`,
 * else the documented default of 300 s) or sent as a string; a refresh answer without a new refresh token
 * (the old one is kept), without an ID token, without `scope` (the same scopes), with `token_type` "bearer".
 */
import { afterEach, describe, expect, it } from 'vitest';
import { storedEntry, useRefreshWorld } from '../support/refresh-e2e.js';

const world = useRefreshWorld({ frontProxy: true, accessTokenTtl: 60 });
afterEach(() => world.idp.faults!.clearFaults());

const TOKEN = /^\/token$/;

/** Refresh answers from now on are rewritten by `edit`. */
function rewriteRefreshAnswers(edit: (answer: Record<string, unknown>) => void): void {
  world.idp.faults!.setFault(TOKEN, {
    kind: 'forward',
    rewrite: (body, status) => {
      if (status !== 200) return body;
      const answer = JSON.parse(body) as Record<string, unknown>;
      edit(answer);
      return JSON.stringify(answer);
    },
  });
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('expires_in', () => {
  it("missing: a JWT access token's exp, else 300 s; a string of digits is read as a number", async () => {
    const { app } = await world.signedIn();
    let token = await app.getToken();

    // A JWT access token (RFC 9068) without expires_in: its exp, 1234 s away, is the lifetime.
    const exp = Math.floor(Date.now() / 1000) + 1234;
    const jwt = `${b64({ alg: 'RS256', typ: 'at+jwt' })}.${b64({ sub: 'alice', exp })}.c2ln`;
    rewriteRefreshAnswers((answer) => {
      delete answer['expires_in'];
      answer['access_token'] = jwt;
    });
    token = await app.getToken({ rejected: token.accessToken });
    expect(token.accessToken).toBe(jwt);
    expect(token.expiresAt).toBeLessThanOrEqual(exp * 1000);
    expect(token.expiresAt).toBeGreaterThan(exp * 1000 - 15_000);

    // An opaque access token without expires_in: the documented default, 300 s.
    rewriteRefreshAnswers((answer) => delete answer['expires_in']);
    let before = Date.now();
    token = await app.getToken({ rejected: token.accessToken });
    expect(token.expiresAt).toBeLessThanOrEqual(Date.now() + 300_000);
    expect(token.expiresAt).toBeGreaterThan(before + 300_000 - 15_000);

    // "120" (a string, as some providers send it).
    rewriteRefreshAnswers((answer) => {
      answer['expires_in'] = '120';
    });
    before = Date.now();
    token = await app.getToken({ rejected: token.accessToken });
    expect(token.expiresAt).toBeLessThanOrEqual(Date.now() + 120_000);
    expect(token.expiresAt).toBeGreaterThan(before + 120_000 - 15_000);
    expect(await world.idp.introspect(token.accessToken)).toMatchObject({ active: true });
  });
});

describe('a refresh answer with only the access token', () => {
  it('keeps the refresh token, the ID token and the scopes; "bearer" is Bearer', async () => {
    const { harness, app } = await world.signedIn();
    const first = await app.getToken();
    const stored = (await storedEntry(harness))!;
    expect(typeof stored['refreshToken']).toBe('string');
    expect(typeof stored['idToken']).toBe('string');
    const refreshes = world.idp.counts.refreshToken;

    rewriteRefreshAnswers((answer) => {
      delete answer['refresh_token'];
      delete answer['id_token'];
      delete answer['scope'];
      answer['token_type'] = 'bearer';
    });
    const second = await app.getToken({ rejected: first.accessToken });
    expect(world.idp.counts.refreshToken).toBe(refreshes + 1);
    expect(second.accessToken).not.toBe(first.accessToken);
    expect(second.tokenType).toBe('Bearer');
    expect(second.scopes).toEqual(first.scopes);
    const after = (await storedEntry(harness))!;
    expect(after['refreshToken']).toBe(stored['refreshToken']);
    expect(after['idToken']).toBe(stored['idToken']);
    expect(after['subject']).toBe('alice');

    // The kept refresh token still works at the provider.
    world.idp.faults!.clearFaults();
    const third = await app.getToken({ rejected: second.accessToken });
    expect(world.idp.counts.refreshToken).toBe(refreshes + 2);
    expect(await world.idp.introspect(third.accessToken)).toMatchObject({ active: true, sub: 'alice' });
  });
});
