/**
 * A small HTTPS API on 127.0.0.1 with a throw-away self-signed certificate (openssl), standing in for a
 * Kubernetes API server: it answers `GET /version` only for a Bearer token the test IdP's introspection
 * (RFC 7662) says is active; `rejectNext(n)` makes it answer 401 to the next n requests whatever they carry.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { TestIdp } from './idp.js';

export interface TlsApiRequest {
  readonly path: string;
  readonly token: string | undefined;
  readonly status: number;
}

export interface TlsApi {
  /** https://127.0.0.1:PORT */
  readonly url: string;
  readonly requests: readonly TlsApiRequest[];
  rejectNext(count: number): void;
  /** From now on answer 401 for this token even if the IdP still says it is active. */
  reject(token: string): void;
  close(): Promise<void>;
}

export const VERSION_BODY = { major: '1', minor: '32', gitVersion: 'v1.32.0-tokenbroker-test', platform: 'linux/amd64' };

/** A self-signed certificate for 127.0.0.1, made with openssl in `dir`. */
export function selfSignedCertificate(dir: string): { key: Buffer; cert: Buffer } {
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  return { key: fs.readFileSync(key), cert: fs.readFileSync(cert) };
}

export async function startTlsApi(idp: TestIdp, dir: string): Promise<TlsApi> {
  const requests: TlsApiRequest[] = [];
  const rejected = new Set<string>();
  let rejectCount = 0;
  const server = https.createServer(selfSignedCertificate(dir), (req, res) => {
    void (async () => {
      const token = /^Bearer ([\x21-\x7E]+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const pathname = new URL(req.url ?? '/', 'https://x').pathname;
      let status = 401;
      if (rejectCount > 0) rejectCount--;
      else if (token !== undefined && !rejected.has(token) && (await idp.introspect(token)).active) status = pathname === '/version' ? 200 : 404;
      requests.push({ path: pathname, token, status });
      // Kubernetes answers a Status object; kubectl shows its message.
      const body =
        status === 200
          ? VERSION_BODY
          : {
              kind: 'Status',
              apiVersion: 'v1',
              status: 'Failure',
              message: status === 401 ? 'Unauthorized' : 'not found',
              reason: status === 401 ? 'Unauthorized' : 'NotFound',
              code: status,
            };
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    })().catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    requests,
    rejectNext: (count) => void (rejectCount = count),
    reject: (token) => void rejected.add(token),
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
