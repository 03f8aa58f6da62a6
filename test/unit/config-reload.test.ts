/**
 * The reload diff (daemon/config-reload.ts): which profiles a new config adds, removes, changes (keeping the
 * session only when issuer and client id stay) and leaves alone.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../daemon/config.js';
import { diffConfigs, isEmptyDiff, sameValue } from '../../daemon/config-reload.js';
import { Secret } from '../../daemon/secret.js';

const issuer = 'https://login.example.com';
const profile = (overrides: Record<string, unknown> = {}) => ({ issuer, clientId: 'app', ...overrides });
const config = (profiles: Record<string, unknown>, extra: Record<string, unknown> = {}) => parseConfig({ profiles, ...extra });

describe('diffConfigs', () => {
  it('the same file again: nothing added, removed or changed', () => {
    const a = config({ main: profile({ scopes: ['openid', 'offline_access'], authorizationParams: { prompt: 'consent', ui_locales: 'de' } }) });
    const b = config({ main: profile({ authorizationParams: { ui_locales: 'de', prompt: 'consent' }, scopes: ['openid', 'offline_access'] }) });
    const diff = diffConfigs(a, b);
    expect(diff).toEqual({ added: [], removed: [], changed: [], unchanged: ['main'], defaultChanged: false });
    expect(isEmptyDiff(diff)).toBe(true);
  });

  it('added (in the new order), removed (in the old order), unchanged', () => {
    const diff = diffConfigs(config({ a: profile(), b: profile(), c: profile() }), config({ d: profile(), b: profile(), e: profile() }));
    expect(diff.added.map((p) => p.name)).toEqual(['d', 'e']);
    expect(diff.removed).toEqual(['a', 'c']);
    expect(diff.unchanged).toEqual(['b']);
    expect(diff.changed).toEqual([]);
  });

  it.each([
    ['scopes', { scopes: ['openid'] }],
    ['redirect', { redirectUri: 'com.example.app:/callback' }],
    ['timers', { refresh: { leadSeconds: 120 } }],
    ['retry', { refresh: { retry: { limit: 5 } } }],
    ['policy', { onRefreshFailure: 'logout' }],
    ['notify', { notify: false }],
    ['authorization params', { authorizationParams: { prompt: 'consent' } }],
  ])('a changed %s keeps the session', (_what, overrides) => {
    const diff = diffConfigs(config({ main: profile() }), config({ main: profile(overrides) }));
    expect(diff.changed).toEqual([{ name: 'main', profile: expect.objectContaining({ name: 'main' }) as unknown, keepsSession: true }]);
    expect(diff.unchanged).toEqual([]);
  });

  it.each([
    ['issuer', { issuer: 'https://other.example.com' }],
    ['client id', { clientId: 'other' }],
    [
      'provider (issuer derived from the Wristband application domain)',
      { issuer: undefined, wristband: { applicationVanityDomain: 'app-co.us.wristband.dev', tenantName: 'acme' } },
    ],
  ])('a changed %s starts over', (_what, overrides) => {
    const diff = diffConfigs(config({ main: profile() }), config({ main: profile(overrides) }));
    expect(diff.changed.map((c) => [c.name, c.keepsSession])).toEqual([['main', false]]);
  });

  it('a new default profile is a change of its own; the profiles themselves are unchanged', () => {
    const diff = diffConfigs(config({ a: profile(), b: profile() }, { defaultProfile: 'a' }), config({ a: profile(), b: profile() }, { defaultProfile: 'b' }));
    expect(diff).toMatchObject({ changed: [], unchanged: ['a', 'b'], defaultChanged: true });
    expect(isEmptyDiff(diff)).toBe(false);
  });

  it('from no file (no profiles) to one profile, and back', () => {
    const none = { defaultProfile: undefined, profiles: new Map() };
    expect(diffConfigs(none, config({ main: profile() }))).toMatchObject({ removed: [], defaultChanged: true });
    expect(diffConfigs(none, config({ main: profile() })).added.map((p) => p.name)).toEqual(['main']);
    expect(diffConfigs(config({ main: profile() }), none)).toMatchObject({ added: [], removed: ['main'], defaultChanged: true });
  });
});

describe('sameValue', () => {
  it('compares deeply, ignoring key order and undefined fields', () => {
    expect(sameValue({ a: 1, b: [1, { c: 'x' }] }, { b: [1, { c: 'x' }], a: 1 })).toBe(true);
    expect(sameValue({ a: 1, b: undefined }, { a: 1 })).toBe(true);
    expect(sameValue({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
    expect(sameValue({ a: 1 }, { a: '1' })).toBe(false);
    expect(sameValue({ a: {} }, { a: [] })).toBe(false);
    expect(sameValue({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(sameValue(null, {})).toBe(false);
  });

  it('compares secrets by what they hold (a Secret shows no keys)', () => {
    expect(sameValue({ clientSecret: new Secret('a') }, { clientSecret: new Secret('a') })).toBe(true);
    expect(sameValue({ clientSecret: new Secret('a') }, { clientSecret: new Secret('b') })).toBe(false);
    expect(sameValue({ clientSecret: new Secret('a') }, { clientSecret: {} })).toBe(false);
  });
});
