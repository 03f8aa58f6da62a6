import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ProfileConfig } from '../../daemon/config.js';
import { createHttpClient } from '../../daemon/oauth/http.js';
import { clearProviderMetadataCache, discover, parseDiscoveryDocument, resolveProviderMetadata } from '../../daemon/oauth/metadata.js';
import { wristbandMetadata, wristbandTenantHost } from '../../daemon/oauth/wristband.js';
import { closedPort } from '../support/closed-port.js';

const app = 'myapp-acme.us.wristband.dev';

describe('Wristband preset', () => {
  it('puts a tenant name before the vanity domain with "-" (no app custom domain)', () => {
    expect(wristbandTenantHost({ applicationVanityDomain: app, tenantName: 'globex', isApplicationCustomDomainActive: false })).toBe(`globex-${app}`);
  });

  it('puts a tenant name before the app custom domain with "." when it is active', () => {
    expect(wristbandTenantHost({ applicationVanityDomain: 'auth.example.com', tenantName: 'globex', isApplicationCustomDomainActive: true })).toBe(
      'globex.auth.example.com',
    );
  });

  it('uses a tenant domain or tenant custom domain as is', () => {
    expect(wristbandTenantHost({ applicationVanityDomain: app, tenantDomain: `globex-${app}`, isApplicationCustomDomainActive: false })).toBe(`globex-${app}`);
    expect(wristbandTenantHost({ applicationVanityDomain: app, tenantCustomDomain: 'login.globex.com', isApplicationCustomDomainActive: true })).toBe(
      'login.globex.com',
    );
  });

  it('reads a dotless tenantDomain as a tenant name (older SDKs call the name "tenantDomainName")', () => {
    expect(wristbandTenantHost({ applicationVanityDomain: app, tenantDomain: 'globex', isApplicationCustomDomainActive: false })).toBe(`globex-${app}`);
    expect(wristbandTenantHost({ applicationVanityDomain: app, tenantDomain: 'localhost:4444', isApplicationCustomDomainActive: false })).toBe(
      'localhost:4444',
    );
  });

  it('sends authorize and logout to the tenant host, everything else to the app host', () => {
    const m = wristbandMetadata({ applicationVanityDomain: app, tenantName: 'globex', isApplicationCustomDomainActive: false });
    expect(m).toEqual({
      issuer: `https://${app}`,
      authorizationEndpoint: `https://globex-${app}/api/v1/oauth2/authorize`,
      endSessionEndpoint: `https://globex-${app}/api/v1/logout`,
      tokenEndpoint: `https://${app}/api/v1/oauth2/token`,
      revocationEndpoint: `https://${app}/api/v1/oauth2/revoke`,
      userinfoEndpoint: `https://${app}/api/v1/oauth2/userinfo`,
      jwksUri: `https://${app}/api/v1/oauth2/jwks`,
      logoutStyle: 'wristband',
      authorizationResponseIssParameterSupported: false,
      idTokenSigningAlgValuesSupported: ['RS256'],
    });
  });

  it('lets a local IdP on a loopback host and port stand in, over http', () => {
    const m = wristbandMetadata({ applicationVanityDomain: '127.0.0.1:4444', tenantDomain: 'localhost:4444', isApplicationCustomDomainActive: false });
    expect(m.issuer).toBe('http://127.0.0.1:4444');
    expect(m.authorizationEndpoint).toBe('http://localhost:4444/api/v1/oauth2/authorize');
    expect(m.tokenEndpoint).toBe('http://127.0.0.1:4444/api/v1/oauth2/token');
    expect(
      wristbandMetadata(
        { applicationVanityDomain: '127.0.0.1:4444', tenantDomain: 'localhost:4444', isApplicationCustomDomainActive: false },
        { loopbackScheme: 'https' },
      ).issuer,
    ).toBe('https://127.0.0.1:4444');
  });

  it('rejects a host with a scheme or path', () => {
    expect(() => wristbandMetadata({ applicationVanityDomain: 'https://x.example', tenantName: 't', isApplicationCustomDomainActive: false })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', field: 'wristband.applicationVanityDomain' }),
    );
    expect(() => wristbandMetadata({ applicationVanityDomain: app, tenantDomain: 'x.example/path', isApplicationCustomDomainActive: false })).toThrow(
      expect.objectContaining({ field: 'wristband.tenantDomain' }),
    );
  });
});

const issuer = 'https://idp.example.com';
const document = {
  issuer,
  authorization_endpoint: `${issuer}/authorize`,
  token_endpoint: `${issuer}/token`,
  revocation_endpoint: `${issuer}/revoke`,
  end_session_endpoint: `${issuer}/logout`,
  userinfo_endpoint: `${issuer}/me`,
  jwks_uri: `${issuer}/jwks`,
  response_types_supported: ['code'],
  code_challenge_methods_supported: ['plain', 'S256'],
  authorization_response_iss_parameter_supported: true,
  id_token_signing_alg_values_supported: ['RS256', 'HS256'],
};

describe('parseDiscoveryDocument (OIDC Discovery §3, §4.3)', () => {
  it('maps a complete document', () => {
    expect(parseDiscoveryDocument(document, issuer)).toEqual({
      issuer,
      authorizationEndpoint: `${issuer}/authorize`,
      tokenEndpoint: `${issuer}/token`,
      revocationEndpoint: `${issuer}/revoke`,
      endSessionEndpoint: `${issuer}/logout`,
      userinfoEndpoint: `${issuer}/me`,
      jwksUri: `${issuer}/jwks`,
      logoutStyle: 'oidc',
      authorizationResponseIssParameterSupported: true,
      idTokenSigningAlgValuesSupported: ['RS256', 'HS256'],
      endpointSources: { revocationEndpoint: 'openid-configuration', endSessionEndpoint: 'openid-configuration' },
    });
  });

  it('requires the issuer to equal the configured one exactly', () => {
    expect(() => parseDiscoveryDocument(document, `${issuer}/`)).toThrow(expect.objectContaining({ code: 'IDP_ERROR', field: 'issuer' }));
    expect(() => parseDiscoveryDocument({ ...document, issuer: 'https://other.example.com' }, issuer)).toThrow(/"issuer"/);
  });

  it('names a missing or insecure endpoint', () => {
    const { token_endpoint: _, ...noToken } = document;
    expect(() => parseDiscoveryDocument(noToken, issuer)).toThrow(expect.objectContaining({ field: 'token_endpoint' }));
    expect(() => parseDiscoveryDocument({ ...document, jwks_uri: undefined }, issuer)).toThrow(expect.objectContaining({ field: 'jwks_uri' }));
    expect(() => parseDiscoveryDocument({ ...document, authorization_endpoint: 'http://idp.example.com/a' }, issuer)).toThrow(
      expect.objectContaining({ field: 'authorization_endpoint' }),
    );
    expect(() => parseDiscoveryDocument({ ...document, revocation_endpoint: 'not a url' }, issuer)).toThrow(
      expect.objectContaining({ field: 'revocation_endpoint' }),
    );
  });

  it('accepts http endpoints on a loopback host', () => {
    const local = 'http://127.0.0.1:3000';
    const m = parseDiscoveryDocument({ issuer: local, authorization_endpoint: `${local}/a`, token_endpoint: `${local}/t`, jwks_uri: `${local}/j` }, local);
    expect(m.tokenEndpoint).toBe(`${local}/t`);
    expect(m.authorizationResponseIssParameterSupported).toBe(false);
  });

  it('refuses a provider that lists PKCE methods without S256, accepts one that lists none', () => {
    expect(() => parseDiscoveryDocument({ ...document, code_challenge_methods_supported: ['plain'] }, issuer)).toThrow(
      expect.objectContaining({ field: 'code_challenge_methods_supported' }),
    );
    const { code_challenge_methods_supported: _, ...silent } = document;
    expect(parseDiscoveryDocument(silent, issuer).tokenEndpoint).toBe(`${issuer}/token`);
  });

  it('refuses a provider without the code response type', () => {
    expect(() => parseDiscoveryDocument({ ...document, response_types_supported: ['id_token'] }, issuer)).toThrow(
      expect.objectContaining({ field: 'response_types_supported' }),
    );
  });
});

describe('discover and resolveProviderMetadata against a local server', () => {
  let server: http.Server;
  let base: string;
  let hits = 0;
  let served: Record<string, unknown> = {};
  const client = createHttpClient({ timeoutMs: 2000, retry: { limit: 0 } });

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      // The RFC 8414 lookups that complete a document are counted in test/unit/oauth-authorization-server-metadata.test.ts.
      if (!req.url?.includes('/.well-known/oauth-authorization-server')) hits++;
      if (req.url === '/.well-known/openid-configuration') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(served));
      } else if (req.url === '/broken/.well-known/openid-configuration') {
        res.writeHead(200, { 'content-type': 'text/html' }).end('<html>');
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => {
    hits = 0;
    clearProviderMetadataCache();
    served = { issuer: base, authorization_endpoint: `${base}/a`, token_endpoint: `${base}/t`, jwks_uri: `${base}/j` };
  });

  const profile = (iss: string): ProfileConfig => ({ name: 'p', provider: 'oidc', issuer: iss, clientId: 'c' }) as unknown as ProfileConfig;

  it('fetches the document once per issuer and serves later calls from the cache', async () => {
    const [a, b] = await Promise.all([resolveProviderMetadata(profile(base), client), resolveProviderMetadata(profile(base), client)]);
    await resolveProviderMetadata(profile(base), client);
    expect(a.tokenEndpoint).toBe(`${base}/t`);
    expect(b).toBe(a);
    expect(hits).toBe(1);
  });

  it('fetches again once the cache entry is older than the TTL', async () => {
    let now = 1_000;
    await resolveProviderMetadata(profile(base), client, { now: () => now, ttlMs: 100 });
    now += 101;
    await resolveProviderMetadata(profile(base), client, { now: () => now, ttlMs: 100 });
    expect(hits).toBe(2);
  });

  it('does not cache a failure', async () => {
    served = { ...served, issuer: `http://127.0.0.1:${await closedPort()}` };
    await expect(resolveProviderMetadata(profile(base), client)).rejects.toMatchObject({ code: 'IDP_ERROR', field: 'issuer' });
    served = { ...served, issuer: base };
    await expect(resolveProviderMetadata(profile(base), client)).resolves.toMatchObject({ issuer: base });
  });

  it('reports a missing document or one that is not JSON', async () => {
    await expect(discover(`${base}/nothing`, client)).rejects.toMatchObject({ code: 'IDP_ERROR', status: 404 });
    await expect(discover(`${base}/broken`, client)).rejects.toMatchObject({ code: 'IDP_ERROR' });
  });

  it('reports an unreachable provider as IDP_UNAVAILABLE', async () => {
    await expect(discover(`http://127.0.0.1:${await closedPort()}`, client)).rejects.toMatchObject({ code: 'IDP_UNAVAILABLE', kind: 'transient' });
  });

  it('derives the Wristband preset without any request', async () => {
    const wristband = { applicationVanityDomain: app, tenantName: 'globex', isApplicationCustomDomainActive: false };
    const p = { ...profile(`https://${app}`), provider: 'wristband', wristband } as ProfileConfig;
    await expect(resolveProviderMetadata(p, client)).resolves.toMatchObject({ tokenEndpoint: `https://${app}/api/v1/oauth2/token` });
    expect(hits).toBe(0);
  });
});
