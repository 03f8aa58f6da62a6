/**
 * token.get {kind: "id"} on a fake clock (Session with the scripted token endpoint, which sends no ID token on
 * refresh): the stored ID token while valid; expired, one refresh is tried, and when its answer carries no ID token
 * the answer is ID_TOKEN_EXPIRED — and later requests do not call the provider again. `idTokenTimes` reads iat/exp.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { idTokenTimes } from '../../daemon/session/id-token-times.js';
import { Secret } from '../../daemon/secret.js';
import { signedInTokens, startSession, type SessionHarness } from '../support/session-fakes.js';

const T0 = Date.UTC(2030, 0, 1);
const SECOND = 1_000;
const MINUTE = 60 * SECOND;

/** An (unsigned) JWT with these claims: the handout only reads iat/exp of a token validated on arrival. */
function jwt(claims: Record<string, unknown>): Secret {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return new Secret(`${part({ alg: 'RS256' })}.${part(claims)}.c2ln`);
}

describe('idTokenTimes', () => {
  it('reads iat and exp (seconds) as epoch ms; anything unreadable is undefined', () => {
    expect(idTokenTimes(jwt({ iat: 100, exp: 160 }))).toEqual({ issuedAt: 100_000, expiresAt: 160_000 });
    expect(idTokenTimes(jwt({ exp: 160 }))).toEqual({ issuedAt: 160_000, expiresAt: 160_000 });
    expect(idTokenTimes(jwt({ iat: 100 }))).toBeUndefined();
    expect(idTokenTimes(jwt({ iat: 100, exp: '160' }))).toBeUndefined();
    expect(idTokenTimes(new Secret('not-a-jwt'))).toBeUndefined();
    expect(idTokenTimes(new Secret('a.%%%.c'))).toBeUndefined();
  });
});

describe('Session: the ID token handout', () => {
  let harness: SessionHarness | undefined;
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    harness?.session.dispose();
    harness = undefined;
    vi.useRealTimers();
  });

  it('valid: handed out as is, kind "id", expiresAt its exp; expired and not renewed on refresh: ID_TOKEN_EXPIRED once tried', async () => {
    const idToken = jwt({ sub: 'alice', iat: T0 / 1000, exp: T0 / 1000 + 60 });
    harness = await startSession({ tokens: signedInTokens(30 * MINUTE, { idToken }) });
    const h = harness;
    expect(await h.getToken({ kind: 'id' })).toMatchObject({ accessToken: idToken.reveal(), kind: 'id', expiresAt: T0 + MINUTE, tokenType: 'Bearer' });
    expect(h.provider.refreshes()).toHaveLength(0);

    await vi.advanceTimersByTimeAsync(MINUTE);
    await expect(h.getToken({ kind: 'id' })).rejects.toMatchObject({ code: 'ID_TOKEN_EXPIRED' });
    expect(h.provider.refreshes()).toHaveLength(1); // one try: the answer had no ID token
    // The refresh's access token is in use; the ID token was kept (not dropped) in the keychain.
    expect((await h.store.load('main'))!.idToken!.reveal()).toBe(idToken.reveal());
    await vi.advanceTimersByTimeAsync(10 * SECOND);
    await expect(h.getToken({ kind: 'id' })).rejects.toMatchObject({ code: 'ID_TOKEN_EXPIRED' });
    expect(h.provider.refreshes()).toHaveLength(1); // the provider said it sends none: not asked again
  });

  it('an ID token the API rejected is refreshed for (once); a refresh that brings none keeps it while valid', async () => {
    const idToken = jwt({ sub: 'alice', iat: T0 / 1000, exp: T0 / 1000 + 3600 });
    harness = await startSession({ tokens: signedInTokens(30 * MINUTE, { idToken }) });
    const h = harness;
    await vi.advanceTimersByTimeAsync(10 * SECOND);
    // Still valid: the same one after the refresh brought none.
    expect((await h.getToken({ kind: 'id', rejected: idToken.reveal() })).accessToken).toBe(idToken.reveal());
    expect(h.provider.refreshes()).toHaveLength(1);
  });
});
