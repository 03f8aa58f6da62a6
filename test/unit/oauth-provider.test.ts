/**
 * The provider side against a real OpenID provider (oidc-provider) on 127.0.0.1: discovery, the whole
 * code flow with PKCE, ID token validation, refresh with and without rotation, revocation, and the
 * Wristband preset pointed at an IdP serving Wristband's paths. The sign-in is driven through the
 * provider's dev interaction pages with fetch, no browser.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProfileConfig } from '../../daemon/config.js';
import { createAuthorizationRequest } from '../../daemon/oauth/authorization-request.js';
import { parseAuthorizationResponse } from '../../daemon/oauth/callback.js';
import { createHttpClient } from '../../daemon/oauth/http.js';
import { validateIdToken } from '../../daemon/oauth/id-token.js';
import { buildLogoutUrl } from '../../daemon/oauth/logout.js';
import { clearProviderMetadataCache, discover, resolveProviderMetadata, type ProviderMetadata } from '../../daemon/oauth/metadata.js';
import { TokenEndpointError } from '../../daemon/oauth/provider-error.js';
import { revokeToken } from '../../daemon/oauth/revocation.js';
import { exchangeAuthorizationCode, refreshAccessToken, type TokenSet } from '../../daemon/oauth/token-endpoint.js';
import { wristbandMetadata } from '../../daemon/oauth/wristband.js';
import { Secret } from '../../daemon/secret.js';
import { signInWithDevForm } from '../support/dev-form-login.js';

const CLIENT_ID = 'native-app';
const REDIRECT_URI = 'com.example.broker:/callback';
const SCOPES = ['openid', 'offline_access', 'email'];

// ---------------------------------------------------------------------------------------------
// A small local IdP fixture (oidc-provider ships no type declarations: the module is loaded by name).
// ---------------------------------------------------------------------------------------------

interface OidcProvider {
  callback(): http.RequestListener;
}
type ProviderClass = new (issuer: string, configuration: Record<string, unknown>) => OidcProvider;

interface Idp {
  readonly issuer: string;
  readonly port: number;
  readonly signingKey: { privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey']; kid: string };
  close(): Promise<void>;
}

const WRISTBAND_ROUTES = {
  authorization: '/api/v1/oauth2/authorize',
  token: '/api/v1/oauth2/token',
  revocation: '/api/v1/oauth2/revoke',
  userinfo: '/api/v1/oauth2/userinfo',
  jwks: '/api/v1/oauth2/jwks',
  end_session: '/api/v1/logout',
};

async function startIdp(options: { rotateRefreshTokens?: boolean; wristbandRoutes?: boolean } = {}): Promise<Idp> {
  const moduleName = 'oidc-provider';
  const { default: Provider } = (await import(moduleName)) as { default: ProviderClass };
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = `key-${port}`;
  const jwk: JWK = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [REDIRECT_URI],
        post_logout_redirect_uris: ['com.example.broker:/logged-out'],
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: ['test-cookie-key'] },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      introspection: { enabled: true },
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    conformIdTokenClaims: false,
    findAccount: (_ctx: unknown, sub: string) => ({ accountId: sub, claims: () => ({ sub, email: `${sub}@example.com`, email_verified: true }) }),
    clockTolerance: 0,
    ttl: { AccessToken: 300, IdToken: 300, RefreshToken: 3600, Grant: 3600, Session: 3600, Interaction: 600, AuthorizationCode: 60 },
    rotateRefreshToken: options.rotateRefreshTokens ?? false,
    ...(options.wristbandRoutes ? { routes: WRISTBAND_ROUTES } : {}),
  });
  server.on('request', provider.callback());
  return {
    issuer,
    port,
    signingKey: { privateKey, kid },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const httpClient = createHttpClient({ timeoutMs: 5000, retry: { limit: 1, baseDelayMs: 20, maxDelayMs: 500 } });

/** The whole login: authorization request → sign-in → response → code exchange. */
async function logIn(metadata: ProviderMetadata, login = 'alice'): Promise<{ tokens: TokenSet; nonce: Secret }> {
  const request = createAuthorizationRequest({
    metadata,
    clientId: CLIENT_ID,
    redirectUri: REDIRECT_URI,
    scopes: SCOPES,
    // oidc-provider issues a refresh token for offline_access only with prompt=consent (OIDC Core §11).
    extraParams: { prompt: 'consent' },
  });
  const callbackUrl = await signInWithDevForm(request.url, login);
  const { code } = parseAuthorizationResponse(callbackUrl, {
    state: request.state,
    issuer: metadata.issuer,
    issRequired: metadata.authorizationResponseIssParameterSupported,
  });
  const tokens = await exchangeAuthorizationCode({
    http: httpClient,
    metadata,
    clientId: CLIENT_ID,
    code,
    codeVerifier: request.codeVerifier,
    redirectUri: REDIRECT_URI,
    requestedScopes: SCOPES,
  });
  return { tokens, nonce: request.nonce };
}

async function rejection(promise: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    return error as Record<string, unknown>;
  }
  throw new Error('expected a rejection');
}

const profileFor = (issuer: string) => ({ name: 'test', provider: 'oidc', issuer, clientId: CLIENT_ID }) as unknown as ProfileConfig;

// ---------------------------------------------------------------------------------------------

describe('against oidc-provider (no rotation)', () => {
  let idp: Idp;
  let metadata: ProviderMetadata;

  beforeAll(async () => {
    idp = await startIdp();
    clearProviderMetadataCache();
    metadata = await resolveProviderMetadata(profileFor(idp.issuer), httpClient);
  });
  afterAll(() => idp.close());

  it('discovers the provider metadata (OIDC Discovery §4)', () => {
    expect(metadata).toMatchObject({
      issuer: idp.issuer,
      authorizationEndpoint: `${idp.issuer}/auth`,
      tokenEndpoint: `${idp.issuer}/token`,
      revocationEndpoint: `${idp.issuer}/token/revocation`,
      endSessionEndpoint: `${idp.issuer}/session/end`,
      jwksUri: `${idp.issuer}/jwks`,
      logoutStyle: 'oidc',
      authorizationResponseIssParameterSupported: true,
    });
  });

  it('refuses a document whose issuer differs from the configured one, naming "issuer"', async () => {
    const error = await rejection(discover(`${idp.issuer}/`, httpClient));
    expect(error).toMatchObject({ code: 'IDP_ERROR', field: 'issuer' });
  });

  it('logs in with PKCE and gets tokens, with a valid ID token', async () => {
    const before = Date.now();
    const { tokens, nonce } = await logIn(metadata);
    expect(tokens.tokenType).toBe('Bearer');
    expect(tokens.refreshToken).toBeInstanceOf(Secret);
    expect(tokens.idToken).toBeInstanceOf(Secret);
    expect(tokens.scopes).toEqual(expect.arrayContaining(['openid', 'offline_access', 'email']));
    expect(tokens.expiresAt).toBeGreaterThanOrEqual(before + 299_000);
    expect(tokens.expiresAt).toBeLessThanOrEqual(Date.now() + 300_000);

    const claims = await validateIdToken(tokens.idToken!, { metadata, clientId: CLIENT_ID, nonce, accessToken: tokens.accessToken });
    expect(claims.sub).toBe('alice');
    expect(claims.email).toBe('alice@example.com');
    expect(claims.exp).toBeGreaterThan(claims.iat);
  });

  it('rejects the ID token with a wrong nonce, a wrong audience, a tampered signature, or when expired', async () => {
    const { tokens, nonce } = await logIn(metadata);
    const idToken = tokens.idToken!;
    expect(await rejection(validateIdToken(idToken, { metadata, clientId: CLIENT_ID, nonce: new Secret('another-nonce-of-enough-length') }))).toMatchObject({
      code: 'LOGIN_FAILED',
      field: 'id_token.nonce',
    });
    expect(await rejection(validateIdToken(idToken, { metadata, clientId: 'someone-else', nonce }))).toMatchObject({
      code: 'LOGIN_FAILED',
      field: 'id_token.aud',
    });
    const [header, payload, signature] = idToken.reveal().split('.') as [string, string, string];
    const i = Math.floor(signature.length / 2);
    const flipped = signature.slice(0, i) + (signature[i] === 'A' ? 'B' : 'A') + signature.slice(i + 1);
    expect(await rejection(validateIdToken(new Secret(`${header}.${payload}.${flipped}`), { metadata, clientId: CLIENT_ID, nonce }))).toMatchObject({
      code: 'LOGIN_FAILED',
      field: 'id_token.signature',
    });
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), sub: 'mallory' })).toString('base64url');
    expect(await rejection(validateIdToken(new Secret(`${header}.${forged}.${signature}`), { metadata, clientId: CLIENT_ID, nonce }))).toMatchObject({
      field: 'id_token.signature',
    });
    const later = () => Date.now() + 3_600_000;
    expect(await rejection(validateIdToken(idToken, { metadata, clientId: CLIENT_ID, nonce, now: later }))).toMatchObject({
      code: 'LOGIN_FAILED',
      field: 'id_token.exp',
    });
  });

  it('never puts the ID token into a validation error', async () => {
    const { tokens } = await logIn(metadata);
    const error = await rejection(validateIdToken(tokens.idToken!, { metadata, clientId: 'someone-else' }));
    expect(JSON.stringify(error) + String(error.message)).not.toContain(tokens.idToken!.reveal().split('.')[2]!);
  });

  it('checks the claims OIDC Core §3.1.3.7 adds to the signature (tokens signed with the provider key)', async () => {
    const sign = (claims: Record<string, unknown>) =>
      new SignJWT({ iat: Math.floor(Date.now() / 1000), ...claims })
        .setProtectedHeader({ alg: 'RS256', kid: idp.signingKey.kid })
        .setIssuer(idp.issuer)
        .setExpirationTime('5m')
        .setSubject('alice')
        .sign(idp.signingKey.privateKey)
        .then((jwt) => new Secret(jwt));
    const options = { metadata, clientId: CLIENT_ID };
    await expect(validateIdToken(await sign({ aud: CLIENT_ID }), options)).resolves.toMatchObject({ sub: 'alice' });
    expect(await rejection(validateIdToken(await sign({ aud: [CLIENT_ID, 'api'] }), options))).toMatchObject({ field: 'id_token.azp' });
    await expect(validateIdToken(await sign({ aud: [CLIENT_ID, 'api'], azp: CLIENT_ID }), options)).resolves.toMatchObject({ sub: 'alice' });
    expect(await rejection(validateIdToken(await sign({ aud: CLIENT_ID, azp: 'other' }), options))).toMatchObject({ field: 'id_token.azp' });
    expect(await rejection(validateIdToken(await sign({ aud: CLIENT_ID, iat: Math.floor(Date.now() / 1000) + 600 }), options))).toMatchObject({
      field: 'id_token.iat',
    });
    expect(await rejection(validateIdToken(await sign({ aud: CLIENT_ID }), { ...options, nonce: new Secret('n'.repeat(43)) }))).toMatchObject({
      field: 'id_token.nonce',
    });
    // at_hash (OIDC Core §3.1.3.8): base64url of the left half of SHA-256 of the access token.
    const atHash = createHash('sha256').update('the-access-token').digest().subarray(0, 16).toString('base64url');
    const withHash = await sign({ aud: CLIENT_ID, at_hash: atHash });
    await expect(validateIdToken(withHash, { ...options, accessToken: new Secret('the-access-token') })).resolves.toMatchObject({ sub: 'alice' });
    expect(await rejection(validateIdToken(withHash, { ...options, accessToken: new Secret('another-access-token') }))).toMatchObject({
      field: 'id_token.at_hash',
    });
    const wrongIssuer = await new SignJWT({ aud: CLIENT_ID })
      .setProtectedHeader({ alg: 'RS256', kid: idp.signingKey.kid })
      .setIssuer('https://evil.example.com')
      .setIssuedAt()
      .setExpirationTime('5m')
      .setSubject('alice')
      .sign(idp.signingKey.privateKey);
    expect(await rejection(validateIdToken(new Secret(wrongIssuer), options))).toMatchObject({ field: 'id_token.iss' });
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: idp.issuer, aud: CLIENT_ID, sub: 'alice' })).toString('base64url')}.`;
    expect(await rejection(validateIdToken(new Secret(unsigned), options))).toMatchObject({ code: 'LOGIN_FAILED' });
    const hmac = await new SignJWT({ aud: CLIENT_ID })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(idp.issuer)
      .setIssuedAt()
      .setExpirationTime('5m')
      .setSubject('alice')
      .sign(new TextEncoder().encode('x'.repeat(32)));
    expect(await rejection(validateIdToken(new Secret(hmac), options))).toMatchObject({ code: 'LOGIN_FAILED', field: 'id_token.alg' });
  });

  it('refreshes: a new access token, the same refresh token, a refreshed ID token for the same subject (OIDC Core §12.2)', async () => {
    const { tokens } = await logIn(metadata);
    const refreshed = await refreshAccessToken({
      http: httpClient,
      metadata,
      clientId: CLIENT_ID,
      refreshToken: tokens.refreshToken!,
      grantedScopes: tokens.scopes,
    });
    expect(refreshed.accessToken.reveal()).not.toBe(tokens.accessToken.reveal());
    // oidc-provider without rotation sends the same refresh token back (other providers may omit it).
    expect(refreshed.refreshToken?.reveal()).toBe(tokens.refreshToken!.reveal());
    expect(refreshed.idToken).toBeDefined();
    await expect(validateIdToken(refreshed.idToken!, { metadata, clientId: CLIENT_ID, expectedSubject: 'alice' })).resolves.toMatchObject({ sub: 'alice' });
    expect(await rejection(validateIdToken(refreshed.idToken!, { metadata, clientId: CLIENT_ID, expectedSubject: 'bob' }))).toMatchObject({
      field: 'id_token.sub',
    });
    // Without rotation the old refresh token keeps working.
    await expect(refreshAccessToken({ http: httpClient, metadata, clientId: CLIENT_ID, refreshToken: tokens.refreshToken! })).resolves.toBeDefined();
  });

  it('classifies a used code as invalid_grant (permanent)', async () => {
    const request = createAuthorizationRequest({ metadata, clientId: CLIENT_ID, redirectUri: REDIRECT_URI, scopes: ['openid'] });
    const { code } = parseAuthorizationResponse(await signInWithDevForm(request.url), { state: request.state, issuer: metadata.issuer, issRequired: true });
    const exchange = () =>
      exchangeAuthorizationCode({ http: httpClient, metadata, clientId: CLIENT_ID, code, codeVerifier: request.codeVerifier, redirectUri: REDIRECT_URI });
    await expect(exchange()).resolves.toBeDefined();
    const error = await rejection(exchange());
    expect(error).toBeInstanceOf(TokenEndpointError);
    expect(error).toMatchObject({ kind: 'permanent', oauthError: 'invalid_grant', code: 'LOGIN_REQUIRED', status: 400 });
  });

  it('refuses a code exchanged with the wrong PKCE verifier (RFC 7636 §4.6)', async () => {
    const request = createAuthorizationRequest({ metadata, clientId: CLIENT_ID, redirectUri: REDIRECT_URI, scopes: ['openid'] });
    const { code } = parseAuthorizationResponse(await signInWithDevForm(request.url), { state: request.state, issuer: metadata.issuer, issRequired: true });
    const error = await rejection(
      exchangeAuthorizationCode({ http: httpClient, metadata, clientId: CLIENT_ID, code, codeVerifier: new Secret('x'.repeat(43)), redirectUri: REDIRECT_URI }),
    );
    expect(error).toMatchObject({ kind: 'permanent', oauthError: 'invalid_grant' });
  });

  it('classifies an unknown client as permanent IDP_ERROR', async () => {
    const { tokens } = await logIn(metadata);
    const error = await rejection(refreshAccessToken({ http: httpClient, metadata, clientId: 'unknown-client', refreshToken: tokens.refreshToken! }));
    expect(error).toMatchObject({ kind: 'permanent', oauthError: 'invalid_client', code: 'IDP_ERROR' });
  });

  it('revokes the refresh token (RFC 7009); refreshing afterwards is invalid_grant → LOGIN_REQUIRED', async () => {
    const { tokens } = await logIn(metadata);
    const result = await revokeToken({ http: httpClient, metadata, clientId: CLIENT_ID, token: tokens.refreshToken!, tokenTypeHint: 'refresh_token' });
    expect(result).toEqual({ revoked: true });
    const error = await rejection(refreshAccessToken({ http: httpClient, metadata, clientId: CLIENT_ID, refreshToken: tokens.refreshToken! }));
    expect(error).toMatchObject({ kind: 'permanent', oauthError: 'invalid_grant', code: 'LOGIN_REQUIRED' });
    // Revoking again is still a success (RFC 7009 §2.2).
    await expect(
      revokeToken({ http: httpClient, metadata, clientId: CLIENT_ID, token: tokens.refreshToken!, tokenTypeHint: 'refresh_token' }),
    ).resolves.toEqual({
      revoked: true,
    });
  });

  it('builds an RP-Initiated Logout URL the provider accepts', async () => {
    const { tokens } = await logIn(metadata);
    const url = buildLogoutUrl(metadata, {
      clientId: CLIENT_ID,
      idTokenHint: tokens.idToken!,
      postLogoutRedirectUri: 'com.example.broker:/logged-out',
      state: 'logout-state',
    })!;
    const response = await fetch(url, { redirect: 'manual' });
    expect(response.status).toBe(200); // the provider's logout confirmation page
    expect(await response.text()).toContain('logout');
  });
});

describe('against oidc-provider with refresh-token rotation', () => {
  let idp: Idp;
  let metadata: ProviderMetadata;

  beforeAll(async () => {
    idp = await startIdp({ rotateRefreshTokens: true });
    metadata = await discover(idp.issuer, httpClient);
  });
  afterAll(() => idp.close());

  it('returns a new refresh token each time; the old one is then invalid_grant', async () => {
    const { tokens } = await logIn(metadata);
    const first = await refreshAccessToken({ http: httpClient, metadata, clientId: CLIENT_ID, refreshToken: tokens.refreshToken! });
    expect(first.refreshToken).toBeDefined();
    expect(first.refreshToken!.reveal()).not.toBe(tokens.refreshToken!.reveal());
    const second = await refreshAccessToken({ http: httpClient, metadata, clientId: CLIENT_ID, refreshToken: first.refreshToken! });
    expect(second.refreshToken!.reveal()).not.toBe(first.refreshToken!.reveal());
    // Reusing a rotated-out refresh token is refused (and oidc-provider revokes the whole grant).
    const error = await rejection(refreshAccessToken({ http: httpClient, metadata, clientId: CLIENT_ID, refreshToken: tokens.refreshToken! }));
    expect(error).toMatchObject({ kind: 'permanent', oauthError: 'invalid_grant', code: 'LOGIN_REQUIRED' });
  });
});

describe('the Wristband preset against an IdP serving Wristband paths', () => {
  let idp: Idp;

  beforeAll(async () => {
    idp = await startIdp({ wristbandRoutes: true });
  });
  afterAll(() => idp.close());

  it('logs in on the tenant host, exchanges, validates, refreshes and revokes on the app host', async () => {
    const metadata = wristbandMetadata({
      applicationVanityDomain: `127.0.0.1:${idp.port}`,
      tenantDomain: `localhost:${idp.port}`,
      isApplicationCustomDomainActive: false,
    });
    expect(metadata.issuer).toBe(idp.issuer);
    expect(metadata.authorizationEndpoint).toBe(`http://localhost:${idp.port}/api/v1/oauth2/authorize`);

    const { tokens, nonce } = await logIn(metadata);
    await expect(validateIdToken(tokens.idToken!, { metadata, clientId: CLIENT_ID, nonce })).resolves.toMatchObject({ sub: 'alice' });
    const refreshed = await refreshAccessToken({ http: httpClient, metadata, clientId: CLIENT_ID, refreshToken: tokens.refreshToken! });
    expect(refreshed.accessToken.reveal()).not.toBe(tokens.accessToken.reveal());
    await expect(
      revokeToken({ http: httpClient, metadata, clientId: CLIENT_ID, token: tokens.refreshToken!, tokenTypeHint: 'refresh_token' }),
    ).resolves.toEqual({ revoked: true });
    expect(await rejection(refreshAccessToken({ http: httpClient, metadata, clientId: CLIENT_ID, refreshToken: tokens.refreshToken! }))).toMatchObject({
      code: 'LOGIN_REQUIRED',
    });
    const logout = new URL(buildLogoutUrl(metadata, { clientId: CLIENT_ID, postLogoutRedirectUri: 'com.example.broker:/logged-out', state: 's' })!);
    expect(logout.origin + logout.pathname).toBe(`http://localhost:${idp.port}/api/v1/logout`);
  });
});
