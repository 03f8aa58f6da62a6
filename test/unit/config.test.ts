import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../daemon/config.js';
import { BrokerError } from '../../proto/index.js';

function fieldOf(json: unknown): string | undefined {
  try {
    parseConfig(json);
  } catch (error) {
    expect(error).toBeInstanceOf(BrokerError);
    return (error as BrokerError).field;
  }
  throw new Error('expected the config to be rejected');
}

const oidc = { issuer: 'https://login.example.com', clientId: 'abc' };

describe('config validation names the wrong field', () => {
  it.each([
    [{ profiles: [] }, 'profiles'],
    [{ profile: {} }, 'profile'],
    [{ profiles: { 'bad name': oidc } }, 'profiles.bad name'],
    [{ profiles: { main: { clientId: 'abc' } } }, 'profiles.main.issuer'],
    [{ profiles: { main: { ...oidc, clientId: '' } } }, 'profiles.main.clientId'],
    [{ profiles: { main: { ...oidc, issuer: 'http://login.example.com' } } }, 'profiles.main.issuer'],
    [{ profiles: { main: { ...oidc, issuer: 'not a url' } } }, 'profiles.main.issuer'],
    [{ profiles: { main: { ...oidc, isuer: 'typo' } } }, 'profiles.main.isuer'],
    [{ profiles: { main: { ...oidc, scopes: 'openid' } } }, 'profiles.main.scopes'],
    [{ profiles: { main: { ...oidc, scopes: ['open id'] } } }, 'profiles.main.scopes[0]'],
    [{ profiles: { main: { ...oidc, redirectUri: 'https://example.com/cb' } } }, 'profiles.main.redirectUri'],
    [{ profiles: { main: { ...oidc, redirectUri: 'myapp:/cb' } } }, 'profiles.main.redirectUri'],
    [{ profiles: { main: { ...oidc, authorizationParams: { state: 'x' } } } }, 'profiles.main.authorizationParams.state'],
    [{ profiles: { main: { ...oidc, authorizationParams: { prompt: 1 } } } }, 'profiles.main.authorizationParams.prompt'],
    [{ profiles: { main: { ...oidc, onRefreshFailure: 'panic' } } }, 'profiles.main.onRefreshFailure'],
    [{ profiles: { main: { ...oidc, refresh: { leadSeconds: -1 } } } }, 'profiles.main.refresh.leadSeconds'],
    [{ profiles: { main: { ...oidc, refresh: { retry: { baseDelayMs: 1000, maxDelayMs: 100 } } } } }, 'profiles.main.refresh.retry.maxDelayMs'],
    [{ profiles: { main: { ...oidc, wristband: { applicationVanityDomain: 'a.b' } } } }, 'profiles.main.issuer'],
    [{ profiles: { w: { clientId: 'a', wristband: { applicationVanityDomain: 'https://a.b' } } } }, 'profiles.w.wristband.applicationVanityDomain'],
    [{ profiles: { w: { clientId: 'a', wristband: { applicationVanityDomain: 'a.b' } } } }, 'profiles.w.wristband.tenantDomain'],
    [{ defaultProfile: 'nope', profiles: { main: oidc } }, 'defaultProfile'],
  ])('%j → %s', (json, field) => {
    expect(fieldOf(json)).toBe(field);
  });
});

describe('config defaults', () => {
  it('fills every default once', () => {
    const config = parseConfig({ profiles: { main: oidc } });
    expect(config.defaultProfile).toBe('main');
    expect(config.profiles.get('main')).toEqual({
      name: 'main',
      provider: 'oidc',
      issuer: 'https://login.example.com',
      clientId: 'abc',
      redirectUri: 'loopback',
      scopes: ['openid', 'offline_access'],
      authorizationParams: {},
      loginTimeoutSeconds: 300,
      httpTimeoutSeconds: 10,
      refresh: { leadSeconds: 60, jitterSeconds: 300, minValidSeconds: 30, retry: { limit: 3, baseDelayMs: 1000, maxDelayMs: 300000 } },
      onRefreshFailure: 'relogin',
      reloginBrowser: 'on-demand',
      notify: true,
      offlineAccessConsent: false,
      tokenEndpointAuthMethod: 'none',
      flow: 'browser',
    });
  });

  it('the Wristband preset defaults its scopes and derives its issuer from the application domain', () => {
    const config = parseConfig({
      profiles: { w: { clientId: 'a', wristband: { applicationVanityDomain: 'app-co.us.wristband.dev', tenantName: 'acme' } } },
    });
    const profile = config.profiles.get('w')!;
    expect(profile.provider).toBe('wristband');
    expect(profile.issuer).toBe('https://app-co.us.wristband.dev');
    expect(profile.scopes).toEqual(['openid', 'offline_access', 'email']);
  });

  it('allows http issuers only on loopback, for local providers', () => {
    expect(() => parseConfig({ profiles: { main: { ...oidc, issuer: 'http://127.0.0.1:3000' } } })).not.toThrow();
  });

  it('has no default profile when several exist and none is named', () => {
    expect(parseConfig({ profiles: { a: oidc, b: oidc } }).defaultProfile).toBeUndefined();
  });
});
