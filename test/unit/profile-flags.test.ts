import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../daemon/config.js';
import { anyProfileFlag, flagForField, missingRequiredFlags, profileFromFlags, type ProfileFlagValues } from '../../daemon/cli/profile-flags.js';
import { UsageError } from '../../daemon/cli/usage.js';

function usageMessage(values: ProfileFlagValues): string {
  try {
    profileFromFlags(values);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error('expected a usage error');
}

describe('profile flags', () => {
  it('every config field is reachable by a flag, and the result is a valid profile', () => {
    const profile = profileFromFlags({
      issuer: 'https://login.example.com',
      'client-id': 'cli',
      redirect: 'com.example.broker:/callback',
      scope: ['openid offline_access', 'email'],
      param: ['prompt=consent', 'login_hint=ada@example.com'],
      'post-logout-redirect': 'com.example.broker:/logged-out',
      'login-timeout': '120',
      'http-timeout': '5',
      'refresh-lead': '90',
      'refresh-jitter': '2',
      'min-valid': '45',
      'retry-limit': '4',
      'retry-base-delay': '500',
      'retry-max-delay': '60000',
      'on-refresh-failure': 'logout',
      'relogin-browser': 'immediately',
    });
    expect(profile).toEqual({
      issuer: 'https://login.example.com',
      clientId: 'cli',
      redirectUri: 'com.example.broker:/callback',
      scopes: ['openid', 'offline_access', 'email'],
      authorizationParams: { prompt: 'consent', login_hint: 'ada@example.com' },
      postLogoutRedirectUri: 'com.example.broker:/logged-out',
      loginTimeoutSeconds: 120,
      httpTimeoutSeconds: 5,
      refresh: { leadSeconds: 90, jitterSeconds: 2, minValidSeconds: 45, retry: { limit: 4, baseDelayMs: 500, maxDelayMs: 60000 } },
      onRefreshFailure: 'logout',
      reloginBrowser: 'immediately',
    });
    const resolved = parseConfig({ profiles: { p: profile } }).profiles.get('p')!;
    expect(resolved.refresh.retry.maxDelayMs).toBe(60000);
    expect(resolved.reloginBrowser).toBe('immediately');
  });

  it('Wristband: the application domain and exactly one tenant flag', () => {
    expect(profileFromFlags({ 'wristband-domain': 'app.example.com', tenant: 'acme', 'client-id': 'x', 'wristband-custom-domain-active': true })).toEqual({
      wristband: { applicationVanityDomain: 'app.example.com', tenantName: 'acme', isApplicationCustomDomainActive: true },
      clientId: 'x',
    });
    expect(usageMessage({ tenant: 'acme' })).toContain('--wristband-domain is required');
    expect(usageMessage({ 'wristband-domain': 'a.example.com', tenant: 'a', 'tenant-domain': 'b.example.com' })).toContain('exactly one of --tenant');
    expect(usageMessage({ issuer: 'https://x.example.com', 'wristband-domain': 'a.example.com', tenant: 'a' })).toContain('exclude each other');
  });

  it('names the flag and what was expected', () => {
    expect(usageMessage({ 'refresh-lead': '1.5' })).toBe('--refresh-lead: expected a whole number of seconds, got "1.5"');
    expect(usageMessage({ 'retry-limit': 'three' })).toBe('--retry-limit: expected a whole number of attempts, got "three"');
    expect(usageMessage({ 'on-refresh-failure': 'panic' })).toBe('--on-refresh-failure: expected one of relogin, logout, got "panic"');
    expect(usageMessage({ param: ['prompt'] })).toContain('--param: expected KEY=VALUE');
    expect(usageMessage({ set: ['noequals'] })).toContain('--set: expected FIELD=JSON');
    expect(usageMessage({ set: ['__proto__.x=1'] })).toContain('is not a field name');
  });

  it('--set reaches any field, JSON or a bare string', () => {
    expect(profileFromFlags({ set: ['refresh.leadSeconds=30', 'postLogoutRedirectUri=com.example.broker:/bye', 'scopes=["openid"]'] })).toEqual({
      refresh: { leadSeconds: 30 },
      postLogoutRedirectUri: 'com.example.broker:/bye',
      scopes: ['openid'],
    });
  });

  it('maps a config field back to its flag', () => {
    expect(flagForField('profiles.w.refresh.retry.maxDelayMs', 'w')).toBe('--retry-max-delay');
    expect(flagForField('profiles.w.scopes[0]', 'w')).toBeUndefined();
    expect(flagForField('profiles.w.authorizationParams.state', 'w')).toBe('--param');
    expect(flagForField('profiles.other.issuer', 'w')).toBeUndefined();
  });

  it('knows what is missing for a non-interactive run, and when flags were given at all', () => {
    expect(missingRequiredFlags({})).toEqual(['--issuer URL (or --wristband-domain HOST --tenant NAME)', '--client-id ID']);
    expect(missingRequiredFlags({ issuer: 'https://x', clientId: 'y' })).toEqual([]);
    expect(anyProfileFlag({})).toBe(false);
    expect(anyProfileFlag({ 'client-id': 'x' })).toBe(true);
  });
});
