/**
 * A small OpenID provider over real HTTP on 127.0.0.1 whose token endpoint answers device-code polls from a
 * script: for the RFC 8628 error answers oidc-provider cannot be made to give on demand (slow_down,
 * expired_token at a chosen poll). Discovery, JWKS (RS256), the device authorization endpoint, and a token
 * endpoint whose answers are taken one per poll ("tokens" signs a real ID token). Records every poll's time.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK } from 'jose';

/** One answer of the token endpoint to a device-code poll. */
export type PollAnswer = 'tokens' | 'authorization_pending' | 'slow_down' | 'expired_token' | 'access_denied';

export interface FakeDeviceProviderOptions {
  /** Answers to successive polls; when they run out, authorization_pending. */
  readonly answers: readonly PollAnswer[];
  /** The device authorization response's `interval` (seconds); @default 1 */
  readonly interval?: number;
  /** The device authorization response's `expires_in` (seconds); @default 600 */
  readonly expiresIn?: number;
  /** Advertise a device_authorization_endpoint in discovery; @default true */
  readonly deviceEndpoint?: boolean;
  /** @default 'device-test' */
  readonly clientId?: string;
  /** The ID token's `aud`; @default the client id (another value makes the token one the broker must refuse) */
  readonly idTokenAudience?: string;
}

export interface FakeDeviceProvider {
  readonly issuer: string;
  readonly clientId: string;
  readonly userCode: string;
  /** Times (epoch ms) of the device-code polls received. */
  readonly polls: number[];
  /** Device authorization requests received (their form bodies). */
  readonly authorizations: URLSearchParams[];
  close(): Promise<void>;
}

export async function startFakeDeviceProvider(options: FakeDeviceProviderOptions): Promise<FakeDeviceProvider> {
  const clientId = options.clientId ?? 'device-test';
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const deviceCode = randomBytes(24).toString('base64url');
  const userCode = 'BCDF-GHJK';
  const answers = [...options.answers];
  const polls: number[] = [];
  const authorizations: URLSearchParams[] = [];
  let issuer = '';

  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  const idToken = () =>
    new SignJWT({ email: 'dora@example.test' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(issuer)
      .setAudience(options.idTokenAudience ?? clientId)
      .setSubject('dora')
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(privateKey);

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const path = new URL(req.url ?? '/', issuer).pathname;
      if (req.method === 'GET' && path === '/.well-known/openid-configuration') {
        return json(res, 200, {
          issuer,
          authorization_endpoint: `${issuer}/auth`,
          token_endpoint: `${issuer}/token`,
          jwks_uri: `${issuer}/jwks`,
          response_types_supported: ['code'],
          ...(options.deviceEndpoint === false ? {} : { device_authorization_endpoint: `${issuer}/device/auth` }),
        });
      }
      if (req.method === 'GET' && path === '/jwks') return json(res, 200, { keys: [jwk] });
      if (req.method === 'POST' && path === '/device/auth') {
        authorizations.push(form);
        return json(res, 200, {
          device_code: deviceCode,
          user_code: userCode,
          verification_uri: `${issuer}/device`,
          verification_uri_complete: `${issuer}/device?user_code=${userCode}`,
          expires_in: options.expiresIn ?? 600,
          interval: options.interval ?? 1,
        });
      }
      if (req.method === 'POST' && path === '/token') {
        if (
          form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:device_code' ||
          form.get('device_code') !== deviceCode ||
          form.get('client_id') !== clientId
        ) {
          return json(res, 400, { error: 'invalid_grant', error_description: 'not this fake’s device code' });
        }
        polls.push(Date.now());
        const answer = answers.shift() ?? 'authorization_pending';
        if (answer !== 'tokens') return json(res, 400, { error: answer });
        void idToken().then((id_token) =>
          json(res, 200, {
            access_token: randomBytes(24).toString('base64url'),
            token_type: 'Bearer',
            expires_in: 600,
            refresh_token: randomBytes(24).toString('base64url'),
            id_token,
            scope: 'openid offline_access',
          }),
        );
        return;
      }
      json(res, 404, { error: 'not_found' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    clientId,
    userCode,
    polls,
    authorizations,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
