/**
 * Per-request tokens (daemon/session/derived-tokens.ts and Session.getToken with `scopes`/`resource`): one cached
 * token per (scopes, resource) key, the least recently used key evicted beyond the bound, every refresh through the
 * session's one queue with the rotated refresh token carried to the next, single flight per key, SCOPE_NOT_GRANTED
 * without a provider call, and the provider's refusal passed on. Fake token endpoint, fake clock.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DerivedTokens, MAX_DERIVED_TOKENS, normalise, tokenKey } from '../../daemon/session/derived-tokens.js';
import { parseConfig } from '../../daemon/config.js';
import type { HttpClient } from '../../daemon/oauth/index.js';
import { refreshAccessToken } from '../../daemon/oauth/token-endpoint.js';
import { Secret } from '../../daemon/secret.js';
import { METADATA, settle, signedInTokens, startSession, type SessionHarness } from '../support/session-fakes.js';

const T0 = Date.UTC(2030, 0, 1);
const SECOND = 1_000;
const MINUTE = 60 * SECOND;

describe('DerivedTokens: keys and LRU', () => {
  it('a key ignores order and duplicates; no scopes and no resource is the primary token (no key)', () => {
    expect(tokenKey(normalise(['b', 'a', 'b']), undefined)).toBe(tokenKey(normalise(['a', 'b']), undefined));
    expect(tokenKey(normalise(['a']), normalise(['https://x']))).not.toBe(tokenKey(normalise(['a']), undefined));
    expect(tokenKey(undefined, normalise(['https://x']))).not.toBe(tokenKey(normalise(['https://x']), undefined));
    expect(tokenKey(normalise([]), normalise(undefined))).toBeUndefined();
  });

  it(`keeps at most ${MAX_DERIVED_TOKENS} keys by default and evicts the least recently used`, () => {
    const evicted: string[] = [];
    const cache = new DerivedTokens(undefined, (entry) => evicted.push(entry.key));
    for (let i = 0; i < MAX_DERIVED_TOKENS; i++) cache.entry([`s${i}`], undefined);
    cache.entry(['s0'], undefined); // s0 used again: s1 is now the oldest
    cache.entry(['new'], undefined);
    expect(cache.size).toBe(MAX_DERIVED_TOKENS);
    expect(evicted).toEqual([tokenKey(['s1'], undefined)]);
    expect(cache.keys()[0]).toBe(tokenKey(['s2'], undefined));
    expect(cache.keys().at(-1)).toBe(tokenKey(['new'], undefined));
    // The same key returns the same entry (its token and refresh in flight).
    expect(cache.entry(['new'], undefined)).toBe(cache.entry(['new'], undefined));
  });
});

describe('Session: tokens per (scopes, resource)', () => {
  let harness: SessionHarness | undefined;
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    harness?.session.dispose();
    harness = undefined;
    vi.useRealTimers();
  });

  it('each key gets its own token from a narrower refresh, cached with its own expiry; the primary token is untouched', async () => {
    harness = await startSession({ tokens: signedInTokens(30 * MINUTE) });
    const h = harness;
    const a = await h.getToken({ resource: ['https://a.example'] });
    const b = await h.getToken({ scopes: ['openid'], resource: ['https://b.example'] });
    expect(h.provider.refreshes().map((r) => r.form)).toEqual([
      expect.objectContaining({ grant_type: 'refresh_token', refresh_token: 'rt-0', resource: 'https://a.example' }),
      expect.objectContaining({ grant_type: 'refresh_token', refresh_token: 'rt-0', resource: 'https://b.example', scope: 'openid' }),
    ]);
    expect(h.provider.refreshes()[0]!.form['scope']).toBeUndefined();
    expect(a).toMatchObject({ accessToken: 'at-1', resource: ['https://a.example'] });
    expect(b).toMatchObject({ accessToken: 'at-2', resource: ['https://b.example'] });
    // From memory now, each its own; the primary is still the sign-in's.
    expect((await h.getToken({ resource: ['https://a.example'] })).accessToken).toBe('at-1');
    expect((await h.getToken({ resource: ['https://b.example'], scopes: ['openid', 'openid'] })).accessToken).toBe('at-2');
    expect((await h.getToken()).accessToken).toBe('at-0');
    expect(h.provider.refreshes()).toHaveLength(2);
  });

  it('a derived token near its expiry is refreshed on demand; one the API rejected is replaced once', async () => {
    harness = await startSession({ tokens: signedInTokens(30 * MINUTE) });
    const h = harness;
    h.provider.answer = { kind: 'ok', expiresIn: 120 };
    const first = await h.getToken({ resource: ['https://a.example'] });
    await vi.advanceTimersByTimeAsync(115 * SECOND); // < 20 s (a sixth of its life) left
    const second = await h.getToken({ resource: ['https://a.example'] });
    expect(second.accessToken).not.toBe(first.accessToken);
    const third = await h.getToken({ resource: ['https://a.example'], rejected: second.accessToken });
    expect(third.accessToken).not.toBe(second.accessToken);
    // Reporting an older token: the current one, no refresh.
    expect((await h.getToken({ resource: ['https://a.example'], rejected: first.accessToken })).accessToken).toBe(third.accessToken);
    expect(h.provider.refreshes()).toHaveLength(3);
  });

  it('rotation: every refresh, derived or primary, sends the refresh token the previous one returned, and it is stored', async () => {
    harness = await startSession({ tokens: signedInTokens(30 * MINUTE) });
    const h = harness;
    h.provider.rotate = true;
    await h.getToken({ resource: ['https://a.example'] });
    await h.getToken({ scopes: ['openid'] });
    await h.getToken({ rejected: 'at-0' }); // the primary
    await h.getToken({ resource: ['https://b.example'] });
    expect(h.provider.refreshes().map((r) => r.form['refresh_token'])).toEqual(['rt-0', 'rt-1', 'rt-2', 'rt-3']);
    expect((await h.store.load('main'))!.refreshToken!.reveal()).toBe('rt-4');
  });

  it('single flight per key: 300 concurrent requests over 3 keys → 3 refreshes, one after another in the queue', async () => {
    harness = await startSession({ tokens: signedInTokens(30 * MINUTE) });
    const h = harness;
    h.provider.rotate = true;
    h.provider.answer = { kind: 'ok', delayMs: 200 };
    const keys = [{ resource: ['https://a.example'] }, { resource: ['https://b.example'] }, { scopes: ['openid'] }];
    const all = Array.from({ length: 300 }, (_, i) => h.getToken(keys[i % 3]));
    await vi.advanceTimersByTimeAsync(1_000);
    const results = await Promise.all(all);
    expect(h.provider.refreshes()).toHaveLength(3);
    for (let k = 0; k < 3; k++) expect(new Set(results.filter((_, i) => i % 3 === k).map((r) => r.accessToken)).size).toBe(1);
    // One at a time: each request began after the previous answer (rotation needs it).
    const times = h.provider.refreshes().map((r) => r.at);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(200);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(200);
    expect(h.provider.refreshes().map((r) => r.form['refresh_token'])).toEqual(['rt-0', 'rt-1', 'rt-2']);
  });

  it('a scope never granted nor asked for at sign-in → SCOPE_NOT_GRANTED, and the provider is not asked', async () => {
    harness = await startSession({ tokens: signedInTokens(30 * MINUTE) });
    const h = harness;
    await expect(h.getToken({ scopes: ['openid', 'admin'] })).rejects.toMatchObject({ code: 'SCOPE_NOT_GRANTED', field: 'params.scopes' });
    await expect(h.getToken({ scopes: ['admin'] })).rejects.toThrow(/"admin"/);
    expect(h.provider.requests).toHaveLength(0);
  });

  it('the provider refusing the narrower request: its error and description passed on; the session goes on', async () => {
    harness = await startSession({ tokens: signedInTokens(30 * MINUTE) });
    const h = harness;
    h.provider.answer = { kind: 'status', status: 400, body: { error: 'invalid_target', error_description: 'resource indicator is not recognised' } };
    const refused = await settle(h.getToken({ resource: ['https://unknown.example'] }));
    expect(refused).toMatchObject({ ok: false, error: { code: 'IDP_ERROR', field: 'params.resource' } });
    expect((refused as { error: Error }).error.message).toMatch(/invalid_target: resource indicator is not recognised/);
    expect(h.session.state).toBe('active');
    expect((await h.getToken()).accessToken).toBe('at-0');
  });

  it('invalid_grant on a derived refresh ends the session as any refresh would', async () => {
    harness = await startSession({ tokens: signedInTokens(30 * MINUTE) });
    const h = harness;
    h.provider.answer = { kind: 'status', status: 400, body: { error: 'invalid_grant' } };
    await expect(h.getToken({ resource: ['https://a.example'] })).rejects.toMatchObject({ code: 'LOGIN_REQUIRED' });
    expect(h.session.state).not.toBe('active');
    expect(await h.store.load('main')).toBeUndefined();
  });

  it('the provider down: a derived token still valid is served; without one, IDP_UNAVAILABLE with retryAt', async () => {
    harness = await startSession({ tokens: signedInTokens(30 * MINUTE) });
    const h = harness;
    h.provider.answer = { kind: 'ok', expiresIn: 120 };
    const first = await h.getToken({ resource: ['https://a.example'] });
    await vi.advanceTimersByTimeAsync(110 * SECOND);
    h.provider.answer = { kind: 'network' };
    expect((await h.getToken({ resource: ['https://a.example'], waitMs: 0 })).accessToken).toBe(first.accessToken);
    await expect(h.getToken({ resource: ['https://b.example'], waitMs: 0 })).rejects.toMatchObject({ code: 'IDP_UNAVAILABLE' });
    expect(h.session.state).toBe('active');
  });

  it("a resource goes out under the profile's audienceParam when set (Auth0's audience)", async () => {
    harness = await startSession({ profile: { audienceParam: 'audience' }, tokens: signedInTokens(30 * MINUTE) });
    const h = harness;
    await h.getToken({ resource: ['https://a.example'] });
    expect(h.provider.refreshes()[0]!.form).toMatchObject({ audience: 'https://a.example' });
    expect(h.provider.refreshes()[0]!.form['resource']).toBeUndefined();
  });
});

describe('refreshAccessToken: resource parameters', () => {
  it('several resources go out as one parameter each (RFC 8707 §2), scope narrowed', async () => {
    const seen: Array<{ body?: string; form?: Record<string, string>; headers: Record<string, string> }> = [];
    const http = {
      post: (_url: string, options: (typeof seen)[number]) => {
        seen.push(options);
        return Promise.resolve({ body: JSON.stringify({ access_token: 'x', token_type: 'Bearer', expires_in: 60 }), headers: {} });
      },
    } as unknown as HttpClient;
    const set = await refreshAccessToken({
      http,
      metadata: METADATA,
      clientId: 'c',
      refreshToken: new Secret('rt'),
      scopes: ['read'],
      resource: ['https://a.example', 'https://b.example'],
    });
    expect(seen[0]!.form).toBeUndefined();
    expect(seen[0]!.headers['content-type']).toBe('application/x-www-form-urlencoded');
    const body = new URLSearchParams(seen[0]!.body);
    expect(body.getAll('resource')).toEqual(['https://a.example', 'https://b.example']);
    expect(body.get('scope')).toBe('read');
    expect(body.get('refresh_token')).toBe('rt');
    expect(set.scopes).toEqual(['read']);
  });
});

describe('config: audienceParam', () => {
  const profile = (audienceParam: unknown) => ({ profiles: { main: { issuer: 'https://idp.example.test', clientId: 'c', audienceParam } } });
  it('names the parameter that carries resource; absent, none is set (RFC 8707 "resource" is used)', () => {
    expect(parseConfig(profile('audience')).profiles.get('main')!.audienceParam).toBe('audience');
    expect(parseConfig(profile(undefined)).profiles.get('main')!.audienceParam).toBeUndefined();
  });
  it('refuses a parameter the broker sets itself, or one that is not a parameter name, naming the field', () => {
    for (const bad of ['refresh_token', 'scope', 'grant_type', 'a b', '', 7]) {
      expect(() => parseConfig(profile(bad)), JSON.stringify(bad)).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID', field: 'profiles.main.audienceParam' }),
      );
    }
  });
});
