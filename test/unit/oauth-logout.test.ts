import { describe, expect, it } from 'vitest';
import { buildLogoutUrl } from '../../daemon/oauth/logout.js';
import type { ProviderMetadata } from '../../daemon/oauth/metadata.js';
import { wristbandMetadata } from '../../daemon/oauth/wristband.js';
import { Secret } from '../../daemon/secret.js';

const oidc: ProviderMetadata = {
  issuer: 'https://idp.example.com',
  authorizationEndpoint: 'https://idp.example.com/authorize',
  tokenEndpoint: 'https://idp.example.com/token',
  endSessionEndpoint: 'https://idp.example.com/session/end',
  jwksUri: 'https://idp.example.com/jwks',
  logoutStyle: 'oidc',
  authorizationResponseIssParameterSupported: true,
};

describe('buildLogoutUrl', () => {
  it('builds an OIDC RP-Initiated Logout URL (§2)', () => {
    const url = new URL(
      buildLogoutUrl(oidc, {
        clientId: 'client-1',
        idTokenHint: new Secret('header.payload.sig'),
        postLogoutRedirectUri: 'com.example.broker:/logged-out',
        state: 'st',
      })!,
    );
    expect(url.origin + url.pathname).toBe('https://idp.example.com/session/end');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      id_token_hint: 'header.payload.sig',
      client_id: 'client-1',
      post_logout_redirect_uri: 'com.example.broker:/logged-out',
      state: 'st',
    });
  });

  it('leaves out what is not given', () => {
    const url = new URL(buildLogoutUrl(oidc, { clientId: 'client-1' })!);
    expect(Object.fromEntries(url.searchParams)).toEqual({ client_id: 'client-1' });
  });

  it('builds a Wristband logout URL on the tenant host', () => {
    const metadata = wristbandMetadata({
      applicationVanityDomain: 'myapp-acme.us.wristband.dev',
      tenantName: 'globex',
      isApplicationCustomDomainActive: false,
    });
    const url = new URL(
      buildLogoutUrl(metadata, {
        clientId: 'client-1',
        idTokenHint: new Secret('ignored'),
        postLogoutRedirectUri: 'com.example.broker:/logged-out',
        state: 'st',
      })!,
    );
    expect(url.origin + url.pathname).toBe('https://globex-myapp-acme.us.wristband.dev/api/v1/logout');
    expect(Object.fromEntries(url.searchParams)).toEqual({ client_id: 'client-1', redirect_url: 'com.example.broker:/logged-out', state: 'st' });
  });

  it('returns undefined when the provider has no logout endpoint', () => {
    const { endSessionEndpoint: _, ...withoutLogout } = oidc;
    expect(buildLogoutUrl(withoutLogout, { clientId: 'client-1' })).toBeUndefined();
  });
});
