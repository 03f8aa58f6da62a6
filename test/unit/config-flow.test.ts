/** The profile's `flow` (browser or RFC 8628 device sign-in): its default, its values, and the Wristband preset. */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../daemon/config.js';
import type { BrokerError } from '../../proto/errors.js';

const oidc = { issuer: 'https://login.example.com', clientId: 'abc' };
const wristband = { clientId: 'a', wristband: { applicationVanityDomain: 'app-co.us.wristband.dev', tenantName: 'acme' } };

function refusal(profile: Record<string, unknown>): BrokerError {
  try {
    parseConfig({ profiles: { main: profile } }, 'config.json');
  } catch (error) {
    return error as BrokerError;
  }
  throw new Error('the config was accepted');
}

describe('profiles.<name>.flow', () => {
  it('is "browser" unless set; "device" is kept', () => {
    expect(parseConfig({ profiles: { main: oidc } }).profiles.get('main')?.flow).toBe('browser');
    expect(parseConfig({ profiles: { main: { ...oidc, flow: 'device' } } }).profiles.get('main')?.flow).toBe('device');
  });

  it('anything else is refused, naming the field and what is expected', () => {
    const error = refusal({ ...oidc, flow: 'phone' });
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.field).toBe('profiles.main.flow');
    expect(error.message).toMatch(/browser.*device/);
  });

  it('the Wristband preset cannot use "device": its documentation names no device authorization endpoint', () => {
    expect(parseConfig({ profiles: { main: { ...wristband, flow: 'browser' } } }).profiles.get('main')?.flow).toBe('browser');
    const error = refusal({ ...wristband, flow: 'device' });
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.field).toBe('profiles.main.flow');
    expect(error.message).toContain('wristband');
  });
});
