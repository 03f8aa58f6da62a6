/**
 * Key sets as providers publish them, against a real local JWKS endpoint: ID tokens without `kid` while
 * several keys could have signed them (a rollover), and keys without `kid` while the token names one.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { clearJwksCache, validateIdToken } from '../../daemon/oauth/id-token.js';
import type { ProviderMetadata } from '../../daemon/oauth/provider-metadata.js';
import { Secret } from '../../daemon/secret.js';

let server: http.Server;
let keys: JWK[] = [];
let metadata: ProviderMetadata;
const issuer = 'https://idp.example.com';

beforeAll(async () => {
  server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys })));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  metadata = {
    issuer,
    authorizationEndpoint: `${base}/a`,
    tokenEndpoint: `${base}/t`,
    jwksUri: `${base}/jwks`,
    logoutStyle: 'oidc',
    authorizationResponseIssParameterSupported: false,
  };
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => clearJwksCache());

async function keyPair(alg: string) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), alg, use: 'sig' } };
}

function idToken(privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'], alg: string, kid?: string): Promise<string> {
  return new SignJWT({ sub: 'alice' })
    .setProtectedHeader({ alg, ...(kid === undefined ? {} : { kid }) })
    .setIssuer(issuer)
    .setAudience('client')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(privateKey);
}

const validate = (token: string) => validateIdToken(new Secret(token), { metadata, clientId: 'client' });

describe('ID tokens without "kid"', () => {
  it('are verified when several keys of the algorithm are published (each is tried)', async () => {
    const old = await keyPair('ES256');
    const current = await keyPair('ES256');
    keys = [
      { ...old.jwk, kid: 'old' },
      { ...current.jwk, kid: 'new' },
    ];
    await expect(validate(await idToken(current.privateKey, 'ES256'))).resolves.toMatchObject({ sub: 'alice' });
    await expect(validate(await idToken(old.privateKey, 'ES256'))).resolves.toMatchObject({ sub: 'alice' });
  });

  it('signed by none of them: refused as a bad signature', async () => {
    const a = await keyPair('ES256');
    const b = await keyPair('ES256');
    const stranger = await keyPair('ES256');
    keys = [a.jwk, b.jwk];
    await expect(validate(await idToken(stranger.privateKey, 'ES256'))).rejects.toMatchObject({ code: 'LOGIN_FAILED', field: 'id_token.signature' });
  });
});

describe('keys without "kid"', () => {
  it('verify an ID token that names a kid', async () => {
    const pair = await keyPair('RS256');
    keys = [pair.jwk];
    await expect(validate(await idToken(pair.privateKey, 'RS256', 'some-kid'))).resolves.toMatchObject({ sub: 'alice' });
  });

  it('a key that carries another kid is not used for it', async () => {
    const pair = await keyPair('RS256');
    keys = [{ ...pair.jwk, kid: 'other' }];
    await expect(validate(await idToken(pair.privateKey, 'RS256', 'some-kid'))).rejects.toMatchObject({ code: 'LOGIN_FAILED', field: 'id_token.kid' });
  });
});
