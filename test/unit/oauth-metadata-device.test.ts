/** Discovery's RFC 8628 `device_authorization_endpoint` (RFC 8414 §2 / RFC 8628 §4): read when present, checked like every endpoint. */
import { describe, expect, it } from 'vitest';
import { parseDiscoveryDocument } from '../../daemon/oauth/metadata.js';

const ISSUER = 'https://login.example.com';
const base = {
  issuer: ISSUER,
  authorization_endpoint: `${ISSUER}/authorize`,
  token_endpoint: `${ISSUER}/token`,
  jwks_uri: `${ISSUER}/jwks`,
};

describe('device_authorization_endpoint in discovery', () => {
  it('is read when the provider advertises it, and absent otherwise', () => {
    expect(parseDiscoveryDocument({ ...base, device_authorization_endpoint: `${ISSUER}/device/code` }, ISSUER).deviceAuthorizationEndpoint).toBe(
      `${ISSUER}/device/code`,
    );
    expect(parseDiscoveryDocument(base, ISSUER).deviceAuthorizationEndpoint).toBeUndefined();
  });

  it('must be https (http only on a loopback host), like every endpoint; the field is named', () => {
    expect(() => parseDiscoveryDocument({ ...base, device_authorization_endpoint: 'http://login.example.com/device' }, ISSUER)).toThrow(
      expect.objectContaining({ field: 'device_authorization_endpoint' }),
    );
    expect(() => parseDiscoveryDocument({ ...base, device_authorization_endpoint: 42 }, ISSUER)).toThrow(
      expect.objectContaining({ field: 'device_authorization_endpoint' }),
    );
  });
});
