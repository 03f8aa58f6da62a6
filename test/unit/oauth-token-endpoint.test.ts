import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHttpClient } from '../../daemon/oauth/http.js';
import type { ProviderMetadata } from '../../daemon/oauth/metadata.js';
import { TokenEndpointError } from '../../daemon/oauth/provider-error.js';
import { revokeToken } from '../../daemon/oauth/revocation.js';
import { DEFAULT_EXPIRES_IN_SECONDS, exchangeAuthorizationCode, parseTokenResponse, refreshAccessToken } from '../../daemon/oauth/token-endpoint.js';
import { Secret } from '../../daemon/secret.js';
import { closedPort } from '../support/closed-port.js';

/** One scripted answer per request; the last one repeats. */
type Answer = { status: number; headers?: Record<string, string>; body?: unknown } | 'hang';

let server: http.Server;
let base: string;
let script: Answer[] = [];
let received: { method: string; headers: http.IncomingHttpHeaders; body: URLSearchParams; at: number }[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    req.on('end', () => {
      received.push({ method: req.method!, headers: req.headers, body: new URLSearchParams(raw), at: Date.now() });
      const answer = script[Math.min(received.length - 1, script.length - 1)]!;
      if (answer === 'hang') return;
      const body = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body ?? {});
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers }).end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  return new Promise<void>((resolve) => server.close(() => resolve()));
});
beforeEach(() => {
  received = [];
  script = [];
});

const metadata = (): ProviderMetadata => ({
  issuer: base,
  authorizationEndpoint: `${base}/authorize`,
  tokenEndpoint: `${base}/token`,
  revocationEndpoint: `${base}/revoke`,
  jwksUri: `${base}/jwks`,
  logoutStyle: 'oidc',
  authorizationResponseIssParameterSupported: false,
});

const fast = createHttpClient({ timeoutMs: 2000, retry: { limit: 2, baseDelayMs: 10, maxDelayMs: 2000 } });
const ok = { status: 200, body: { access_token: 'AT-1', token_type: 'bearer', expires_in: 120, refresh_token: 'RT-2', scope: 'openid email' } };
const refreshToken = new Secret('RT-secret-value');

async function failure(promise: Promise<unknown>): Promise<TokenEndpointError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(TokenEndpointError);
    return error as TokenEndpointError;
  }
  throw new Error('expected a failure');
}

describe('exchangeAuthorizationCode (RFC 6749 §4.1.3, RFC 7636 §4.5)', () => {
  it('posts the code, verifier, redirect URI and client_id as a public client', async () => {
    script = [ok];
    const tokens = await exchangeAuthorizationCode({
      http: fast,
      metadata: metadata(),
      clientId: 'client-1',
      code: new Secret('CODE'),
      codeVerifier: new Secret('VERIFIER'),
      redirectUri: 'com.example.broker:/callback',
      now: () => 1_000_000,
    });
    const request = received[0]!;
    expect(request.method).toBe('POST');
    expect(request.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(request.headers['accept']).toBe('application/json');
    expect(request.headers['user-agent']).toMatch(/^tokenbroker\/\d+\.\d+\.\d+/);
    expect(request.headers['authorization']).toBeUndefined();
    expect(request.headers['cookie']).toBeUndefined();
    expect(Object.fromEntries(request.body)).toEqual({
      grant_type: 'authorization_code',
      code: 'CODE',
      redirect_uri: 'com.example.broker:/callback',
      code_verifier: 'VERIFIER',
      client_id: 'client-1',
    });
    expect(tokens.accessToken.reveal()).toBe('AT-1');
    expect(tokens.tokenType).toBe('Bearer');
    expect(tokens.expiresAt).toBe(1_000_000 + 120_000);
    expect(tokens.refreshToken?.reveal()).toBe('RT-2');
    expect(tokens.scopes).toEqual(['openid', 'email']);
    expect(inspect(tokens)).not.toContain('AT-1');
  });
});

describe('refreshAccessToken (RFC 6749 §6)', () => {
  it('posts the refresh token with client_id, and a scope only when narrowing', async () => {
    script = [ok];
    await refreshAccessToken({ http: fast, metadata: metadata(), clientId: 'client-1', refreshToken });
    expect(Object.fromEntries(received[0]!.body)).toEqual({ grant_type: 'refresh_token', refresh_token: 'RT-secret-value', client_id: 'client-1' });
    await refreshAccessToken({ http: fast, metadata: metadata(), clientId: 'client-1', refreshToken, scopes: ['openid'] });
    expect(received[1]!.body.get('scope')).toBe('openid');
  });

  it('keeps the granted scopes when the answer has no scope, and no refresh token when none was rotated', async () => {
    script = [{ status: 200, body: { access_token: 'AT', token_type: 'Bearer', expires_in: 60 } }];
    const tokens = await refreshAccessToken({ http: fast, metadata: metadata(), clientId: 'c', refreshToken, grantedScopes: ['openid', 'offline_access'] });
    expect(tokens.scopes).toEqual(['openid', 'offline_access']);
    expect(tokens.refreshToken).toBeUndefined();
  });

  it('classifies invalid_grant as permanent → LOGIN_REQUIRED, without retrying', async () => {
    script = [{ status: 400, body: { error: 'invalid_grant', error_description: 'grant request is invalid' } }];
    const error = await failure(refreshAccessToken({ http: fast, metadata: metadata(), clientId: 'c', refreshToken }));
    expect(error).toMatchObject({ code: 'LOGIN_REQUIRED', kind: 'permanent', oauthError: 'invalid_grant', status: 400 });
    expect(error.message).toContain('invalid_grant');
    expect(received).toHaveLength(1);
  });

  it('classifies invalid_client and other 4xx as permanent → IDP_ERROR', async () => {
    script = [{ status: 401, body: { error: 'invalid_client' } }];
    expect(await failure(refreshAccessToken({ http: fast, metadata: metadata(), clientId: 'c', refreshToken }))).toMatchObject({
      code: 'IDP_ERROR',
      kind: 'permanent',
      oauthError: 'invalid_client',
      status: 401,
    });
    script = [{ status: 404, body: 'Not Found' }];
    expect(await failure(refreshAccessToken({ http: fast, metadata: metadata(), clientId: 'c', refreshToken }))).toMatchObject({
      code: 'IDP_ERROR',
      kind: 'permanent',
      status: 404,
    });
  });

  it('retries 5xx with backoff, then succeeds', async () => {
    script = [{ status: 502 }, { status: 503 }, ok];
    const tokens = await refreshAccessToken({ http: fast, metadata: metadata(), clientId: 'c', refreshToken });
    expect(tokens.accessToken.reveal()).toBe('AT-1');
    expect(received).toHaveLength(3);
    expect(received.every((r) => r.body.get('refresh_token') === 'RT-secret-value')).toBe(true);
  });

  it('gives up after the retry limit and classifies 5xx as transient → IDP_UNAVAILABLE', async () => {
    script = [{ status: 500, body: { error: 'server_error' } }];
    const error = await failure(refreshAccessToken({ http: fast, metadata: metadata(), clientId: 'c', refreshToken }));
    expect(error).toMatchObject({ code: 'IDP_UNAVAILABLE', kind: 'transient', status: 500 });
    expect(error.retryAfterMs).toBeUndefined();
    expect(received).toHaveLength(3); // limit 2 → three attempts
  });

  it('honours a short Retry-After before retrying', async () => {
    script = [{ status: 503, headers: { 'retry-after': '1' } }, ok];
    await refreshAccessToken({ http: fast, metadata: metadata(), clientId: 'c', refreshToken });
    expect(received).toHaveLength(2);
    expect(received[1]!.at - received[0]!.at).toBeGreaterThanOrEqual(950);
  });

  it('stops at a Retry-After longer than maxDelayMs and reports it (429 → transient with retryAt)', async () => {
    script = [{ status: 429, headers: { 'retry-after': '120' }, body: { error: 'slow_down' } }];
    const before = Date.now();
    const error = await failure(refreshAccessToken({ http: fast, metadata: metadata(), clientId: 'c', refreshToken }));
    expect(error).toMatchObject({ code: 'IDP_UNAVAILABLE', kind: 'transient', status: 429, retryAfterMs: 120_000 });
    expect(error.retryAt).toBeGreaterThanOrEqual(before + 120_000);
    expect(error.toWire().retryAt).toBe(error.retryAt);
    expect(received).toHaveLength(1);
  });

  it('retries 408 and 429 without Retry-After like other transient failures', async () => {
    script = [{ status: 408 }, { status: 429 }, ok];
    await refreshAccessToken({ http: fast, metadata: metadata(), clientId: 'c', refreshToken });
    expect(received).toHaveLength(3);
  });

  it('classifies a timeout as transient', async () => {
    script = ['hang'];
    const impatient = createHttpClient({ timeoutMs: 150, retry: { limit: 1, baseDelayMs: 10, maxDelayMs: 100 } });
    const error = await failure(refreshAccessToken({ http: impatient, metadata: metadata(), clientId: 'c', refreshToken }));
    expect(error).toMatchObject({ code: 'IDP_UNAVAILABLE', kind: 'transient', networkError: 'ETIMEDOUT' });
    // Not resent in-request: the provider may have spent the refresh token before the answer was lost.
    expect(received).toHaveLength(1);
  });

  it('resends a token request only when it never reached the server or the server answered with an error status', async () => {
    script = [{ status: 503 }, { status: 200, body: { access_token: 'AT', token_type: 'Bearer', expires_in: 60 } }];
    const tokens = await refreshAccessToken({ http: fast, metadata: metadata(), clientId: 'c', refreshToken });
    expect(tokens.accessToken.reveal()).toBe('AT');
    expect(received).toHaveLength(2);
  });

  it('classifies a refused connection as transient', async () => {
    const error = await failure(
      refreshAccessToken({
        http: fast,
        metadata: { ...metadata(), tokenEndpoint: `http://127.0.0.1:${await closedPort()}/token` },
        clientId: 'c',
        refreshToken,
      }),
    );
    expect(error).toMatchObject({ code: 'IDP_UNAVAILABLE', kind: 'transient', networkError: 'ECONNREFUSED' });
  });

  it('never puts the refresh token into the error', async () => {
    for (const answer of [{ status: 400, body: { error: 'invalid_grant' } }, { status: 500 }] as const) {
      script = [answer];
      const error = await failure(refreshAccessToken({ http: fast, metadata: metadata(), clientId: 'c', refreshToken }));
      const dump = [error.message, String(error), inspect(error, { depth: 10 }), JSON.stringify(error), JSON.stringify(error.toWire())].join('\n');
      expect(dump).not.toContain('RT-secret-value');
      expect(error.cause).toBeUndefined();
    }
  });
});

describe('parseTokenResponse (RFC 6749 §5.1)', () => {
  const valid = { access_token: 'AT', token_type: 'Bearer', expires_in: 60 };
  const parse = (body: unknown) => parseTokenResponse(JSON.stringify(body), ['openid'], 0);

  it('names the wrong field of a malformed answer (IDP_ERROR)', () => {
    const cases: [unknown, string][] = [
      [{ ...valid, access_token: undefined }, 'access_token'],
      [{ ...valid, access_token: 42 }, 'access_token'],
      [{ ...valid, token_type: undefined }, 'token_type'],
      [{ ...valid, token_type: 'DPoP' }, 'token_type'],
      [{ ...valid, expires_in: -5 }, 'expires_in'],
      [{ ...valid, expires_in: 0 }, 'expires_in'],
      [{ ...valid, expires_in: 'soon' }, 'expires_in'],
      [{ ...valid, scope: ['openid'] }, 'scope'],
      [{ ...valid, refresh_token: 7 }, 'refresh_token'],
      [{ ...valid, id_token: '' }, 'id_token'],
      [['not', 'an', 'object'], 'body'],
    ];
    for (const [body, field] of cases) {
      expect(() => parse(body), field).toThrow(expect.objectContaining({ code: 'IDP_ERROR', field }));
    }
    expect(() => parseTokenResponse('<html>', [], 0)).toThrow(expect.objectContaining({ field: 'body' }));
  });

  it('accepts Bearer in any case and a numeric-string expires_in', () => {
    expect(parse({ ...valid, token_type: 'BEARER', expires_in: '90' }).expiresAt).toBe(90_000);
  });

  it(`assumes ${DEFAULT_EXPIRES_IN_SECONDS} s when expires_in is absent`, () => {
    expect(parse({ access_token: 'AT', token_type: 'Bearer' }).expiresAt).toBe(DEFAULT_EXPIRES_IN_SECONDS * 1000);
  });

  it('falls back to the requested scopes when scope is absent', () => {
    expect(parse(valid).scopes).toEqual(['openid']);
    expect(parse({ ...valid, scope: 'openid  email' }).scopes).toEqual(['openid', 'email']);
  });
});

describe('revokeToken (RFC 7009)', () => {
  it('posts token, hint and client_id; 200 means revoked', async () => {
    script = [{ status: 200, body: '' }];
    const result = await revokeToken({ http: fast, metadata: metadata(), clientId: 'client-1', token: refreshToken, tokenTypeHint: 'refresh_token' });
    expect(result).toEqual({ revoked: true });
    expect(received[0]!.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(received[0]!.body)).toEqual({ token: 'RT-secret-value', token_type_hint: 'refresh_token', client_id: 'client-1' });
  });

  it('returns a transient failure after retrying 503 (§2.2.1)', async () => {
    script = [{ status: 503 }];
    const result = await revokeToken({ http: fast, metadata: metadata(), clientId: 'c', token: refreshToken, tokenTypeHint: 'refresh_token' });
    expect(result).toMatchObject({ revoked: false, reason: 'transient', status: 503 });
    expect(received).toHaveLength(3);
  });

  it('returns a permanent failure for unsupported_token_type', async () => {
    script = [{ status: 400, body: { error: 'unsupported_token_type' } }];
    const result = await revokeToken({ http: fast, metadata: metadata(), clientId: 'c', token: refreshToken, tokenTypeHint: 'access_token' });
    expect(result).toMatchObject({ revoked: false, reason: 'permanent', status: 400, oauthError: 'unsupported_token_type' });
    expect(JSON.stringify(result)).not.toContain('RT-secret-value');
  });

  it('says "unsupported" when the provider has no revocation endpoint', async () => {
    const { revocationEndpoint: _, ...noRevocation } = metadata();
    const result = await revokeToken({ http: fast, metadata: noRevocation, clientId: 'c', token: refreshToken, tokenTypeHint: 'refresh_token' });
    expect(result).toMatchObject({ revoked: false, reason: 'unsupported' });
    expect(received).toHaveLength(0);
  });
});
