/**
 * Completing OpenID metadata from RFC 8414 Authorization Server Metadata, and from the config as a last
 * resort, against a real local HTTP server.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ProfileConfig } from '../../daemon/config.js';
import { parseConfig } from '../../daemon/config.js';
import { authorizationServerMetadataUrls } from '../../daemon/oauth/authorization-server-metadata.js';
import { createHttpClient } from '../../daemon/oauth/http.js';
import { clearProviderMetadataCache, resolveProviderMetadata } from '../../daemon/oauth/metadata.js';

describe('RFC 8414 §3.1 well-known URLs', () => {
  it('inserts the well-known path before the issuer path, then tries the appended form', () => {
    expect(authorizationServerMetadataUrls('https://idp.example.com/tenant/a')).toEqual([
      'https://idp.example.com/.well-known/oauth-authorization-server/tenant/a',
      'https://idp.example.com/tenant/a/.well-known/oauth-authorization-server',
    ]);
  });

  it('removes a terminating "/" first, and tries a path-less issuer once', () => {
    expect(authorizationServerMetadataUrls('https://tenant.auth0.com/')).toEqual(['https://tenant.auth0.com/.well-known/oauth-authorization-server']);
    expect(authorizationServerMetadataUrls('https://idp.example.com/realms/x/')).toEqual([
      'https://idp.example.com/.well-known/oauth-authorization-server/realms/x',
      'https://idp.example.com/realms/x/.well-known/oauth-authorization-server',
    ]);
  });
});

describe('resolveProviderMetadata completes the OpenID document', () => {
  let server: http.Server;
  let base: string;
  /** Path → JSON document (or a status number). */
  let routes: Record<string, unknown> = {};
  let paths: string[] = [];
  const client = createHttpClient({ timeoutMs: 2000, retry: { limit: 0 } });

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      paths.push(req.url ?? '');
      const route = routes[req.url ?? ''];
      if (typeof route === 'number') res.writeHead(route).end();
      else if (route === undefined) res.writeHead(404).end();
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(route));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => {
    clearProviderMetadataCache();
    paths = [];
    routes = {};
  });

  const openid = (issuer: string, extra: Record<string, unknown> = {}) => ({
    issuer,
    authorization_endpoint: `${base}/a`,
    token_endpoint: `${base}/t`,
    jwks_uri: `${base}/j`,
    ...extra,
  });
  const profile = (issuer: string, extra: Record<string, unknown> = {}): ProfileConfig =>
    parseConfig({ profiles: { p: { issuer, clientId: 'c', ...extra } } }).profiles.get('p')!;

  it('takes a revocation endpoint found only in the path-inserted RFC 8414 document', async () => {
    const issuer = `${base}/tenant`;
    routes['/tenant/.well-known/openid-configuration'] = openid(issuer, { end_session_endpoint: `${base}/logout` });
    routes['/.well-known/oauth-authorization-server/tenant'] = {
      issuer,
      revocation_endpoint: `${base}/revoke`,
      device_authorization_endpoint: `${base}/device`,
    };
    const m = await resolveProviderMetadata(profile(issuer), client);
    expect(m.revocationEndpoint).toBe(`${base}/revoke`);
    expect(m.deviceAuthorizationEndpoint).toBe(`${base}/device`);
    expect(m.endSessionEndpoint).toBe(`${base}/logout`);
    expect(m.endpointSources).toEqual({
      endSessionEndpoint: 'openid-configuration',
      revocationEndpoint: 'oauth-authorization-server',
      deviceAuthorizationEndpoint: 'oauth-authorization-server',
    });
    expect(paths).toEqual(['/tenant/.well-known/openid-configuration', '/.well-known/oauth-authorization-server/tenant']);
  });

  it('falls back to the appended form when the path-inserted one is missing', async () => {
    const issuer = `${base}/realm`;
    routes['/realm/.well-known/openid-configuration'] = openid(issuer);
    routes['/realm/.well-known/oauth-authorization-server'] = { issuer, revocation_endpoint: `${base}/revoke` };
    const m = await resolveProviderMetadata(profile(issuer), client);
    expect(m.revocationEndpoint).toBe(`${base}/revoke`);
    expect(paths.slice(1)).toEqual(['/.well-known/oauth-authorization-server/realm', '/realm/.well-known/oauth-authorization-server']);
  });

  it('ignores an RFC 8414 document of another issuer (RFC 8414 §3.3), saying so in the notes', async () => {
    const issuer = `${base}/x`;
    routes['/x/.well-known/openid-configuration'] = openid(issuer);
    routes['/.well-known/oauth-authorization-server/x'] = { issuer: `${issuer}/`, revocation_endpoint: `${base}/revoke` };
    const m = await resolveProviderMetadata(profile(issuer), client);
    expect(m.revocationEndpoint).toBeUndefined();
    expect(m.notes).toEqual([expect.stringMatching(/names issuer "http:.*\/x\/", not exactly "http:.*\/x": its endpoints were not used \(RFC 8414 §3\.3\)/)]);
  });

  it('does not look for RFC 8414 metadata when the OpenID document has every endpoint', async () => {
    routes['/full/.well-known/openid-configuration'] = openid(`${base}/full`, {
      revocation_endpoint: `${base}/r`,
      end_session_endpoint: `${base}/l`,
      device_authorization_endpoint: `${base}/d`,
    });
    await resolveProviderMetadata(profile(`${base}/full`), client);
    expect(paths).toEqual(['/full/.well-known/openid-configuration']);
  });

  it('an endpoint in the OpenID document wins over the RFC 8414 one', async () => {
    const issuer = `${base}/both`;
    routes['/both/.well-known/openid-configuration'] = openid(issuer, { revocation_endpoint: `${base}/openid-revoke` });
    routes['/.well-known/oauth-authorization-server/both'] = { issuer, revocation_endpoint: `${base}/oauth-revoke` };
    expect((await resolveProviderMetadata(profile(issuer), client)).revocationEndpoint).toBe(`${base}/openid-revoke`);
  });

  it('uses configured endpoints only where the provider names none', async () => {
    const issuer = `${base}/cfg`;
    routes['/cfg/.well-known/openid-configuration'] = openid(issuer, { end_session_endpoint: `${base}/provider-logout` });
    const m = await resolveProviderMetadata(
      profile(issuer, { revocationEndpoint: `${base}/configured-revoke`, endSessionEndpoint: `${base}/configured-logout` }),
      client,
    );
    expect(m.revocationEndpoint).toBe(`${base}/configured-revoke`);
    expect(m.endSessionEndpoint).toBe(`${base}/provider-logout`);
    expect(m.endpointSources).toMatchObject({ revocationEndpoint: 'config', endSessionEndpoint: 'openid-configuration' });
    // The cached document is not changed by one profile's config.
    expect((await resolveProviderMetadata(profile(issuer), client)).revocationEndpoint).toBeUndefined();
  });

  it('refuses a configured endpoint that is not https (outside loopback), naming the field', () => {
    expect(() => profile('https://idp.example.com', { revocationEndpoint: 'http://idp.example.com/revoke' })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', field: 'profiles.p.revocationEndpoint' }),
    );
    expect(() => profile('https://idp.example.com', { endSessionEndpoint: 'not a url' })).toThrow(/profiles\.p\.endSessionEndpoint: expected an absolute URL/);
  });

  it('looks again soon when the RFC 8414 lookup failed for a passing reason (5xx), not in an hour', async () => {
    const issuer = `${base}/flaky`;
    routes['/flaky/.well-known/openid-configuration'] = openid(issuer);
    routes['/.well-known/oauth-authorization-server/flaky'] = 503;
    routes['/flaky/.well-known/oauth-authorization-server'] = 503;
    let now = 1_000;
    expect((await resolveProviderMetadata(profile(issuer), client, { now: () => now })).revocationEndpoint).toBeUndefined();
    routes['/.well-known/oauth-authorization-server/flaky'] = { issuer, revocation_endpoint: `${base}/revoke` };
    now += 61_000;
    expect((await resolveProviderMetadata(profile(issuer), client, { now: () => now })).revocationEndpoint).toBe(`${base}/revoke`);
  });
});
