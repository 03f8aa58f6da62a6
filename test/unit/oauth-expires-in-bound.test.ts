/**
 * `expires_in` has an upper bound (MAX_EXPIRES_IN_SECONDS, one year): a provider answering `1e13` once had its
 * token installed with an expiry beyond what `Date` can represent, and the daemon then failed while logging it.
 * Larger values are clamped to the bound (not refused: a refused refresh answer would throw away a rotated
 * refresh token), and the caller logs a warning.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../daemon/config.js';
import { createHttpClient } from '../../daemon/oauth/http.js';
import type { ProviderMetadata } from '../../daemon/oauth/metadata.js';
import { MAX_EXPIRES_IN_SECONDS, parseTokenResponse } from '../../daemon/oauth/token-endpoint.js';
import { Secret } from '../../daemon/secret.js';
import { refreshGrant } from '../../daemon/session/token-requests.js';

const YEAR_MS = 365 * 24 * 3600 * 1000;
const valid = { access_token: 'AT', token_type: 'Bearer' };

describe('expires_in upper bound', () => {
  it('is one year', () => {
    expect(MAX_EXPIRES_IN_SECONDS).toBe(31_536_000);
  });

  it.each([1e13, 1e300, '9999999999', MAX_EXPIRES_IN_SECONDS + 1])('clamps expires_in %s to one year and says it did', (expiresIn) => {
    const receivedAt = Date.now();
    const set = parseTokenResponse(JSON.stringify({ ...valid, expires_in: expiresIn }), [], receivedAt);
    expect(set.expiresAt).toBe(receivedAt + YEAR_MS);
    expect(set.expiresInClamped).toBe(Number(expiresIn));
    expect(() => new Date(set.expiresAt).toISOString()).not.toThrow();
  });

  it('leaves a lifetime up to the bound alone', () => {
    const set = parseTokenResponse(JSON.stringify({ ...valid, expires_in: MAX_EXPIRES_IN_SECONDS }), [], 0);
    expect(set.expiresAt).toBe(YEAR_MS);
    expect(set.expiresInClamped).toBeUndefined();
  });

  it('still refuses what is not a positive number', () => {
    for (const expiresIn of [-1, 0, 'soon']) {
      expect(() => parseTokenResponse(JSON.stringify({ ...valid, expires_in: expiresIn }), [], 0)).toThrow(/expires_in/);
    }
  });
});

describe('a refresh answered with expires_in 1e13', () => {
  let server: http.Server;
  let base: string;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () =>
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...valid, expires_in: 1e13, refresh_token: 'RT-new' })),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('installs a token that lives one year and logs a warning naming the value', async () => {
    const metadata: ProviderMetadata = {
      issuer: base,
      authorizationEndpoint: `${base}/authorize`,
      tokenEndpoint: `${base}/token`,
      jwksUri: `${base}/jwks`,
      logoutStyle: 'oidc',
      authorizationResponseIssParameterSupported: false,
    };
    const profile = parseConfig({ profiles: { main: { issuer: base, clientId: 'c' } } }).profiles.get('main')!;
    const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
    const log = { warn: (fields: Record<string, unknown>, message: string) => warnings.push({ fields, message }) };
    const kept: string[] = [];
    const before = Date.now();
    const refreshed = await refreshGrant(
      { profile, http: createHttpClient({ timeoutMs: 2000 }), now: Date.now, log: log as never },
      metadata,
      { accessToken: new Secret('AT-old'), refreshToken: new Secret('RT-old'), expiresAt: before, scopes: [], tokenType: 'Bearer', savedAt: before },
      {
        keepRotated: (rt) => {
          kept.push(rt.reveal());
          return Promise.resolve();
        },
      },
    );
    expect(refreshed.tokens.expiresAt - before).toBeGreaterThan(YEAR_MS - 60_000);
    expect(refreshed.tokens.expiresAt - Date.now()).toBeLessThanOrEqual(YEAR_MS);
    expect(new Date(refreshed.tokens.expiresAt).toISOString()).toMatch(/^\d{4}-/);
    expect(kept).toEqual(['RT-new']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.fields).toMatchObject({ expiresIn: 1e13, usedSeconds: MAX_EXPIRES_IN_SECONDS });
    expect(warnings[0]!.message).toContain('one year');
  });
});
