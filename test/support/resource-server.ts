/**
 * A tiny protected API on 127.0.0.1 for the 401 path: `GET /api` answers 200 only for a Bearer token
 * the IdP's introspection (RFC 7662) says is active and that the test has not told it to reject;
 * anything else gets 401 with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3.1).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestIdp } from './idp.js';

export interface ResourceRequest {
  readonly at: number;
  /** The bearer token presented (undefined when none). */
  readonly token: string | undefined;
  readonly status: number;
}

export interface ResourceServer {
  /** http://127.0.0.1:PORT/api */
  readonly url: string;
  /** Every request, in the order answered. */
  readonly requests: readonly ResourceRequest[];
  /** From now on, answer 401 for this token even if the IdP still says it is active. */
  reject(token: string): void;
  close(): Promise<void>;
}

export async function startResourceServer(idp: TestIdp): Promise<ResourceServer> {
  const rejected = new Set<string>();
  const requests: ResourceRequest[] = [];

  const server = http.createServer((req, res) => {
    void (async () => {
      const header = req.headers.authorization ?? '';
      const match = /^Bearer ([\x21-\x7E]+)$/i.exec(header);
      const token = match?.[1];
      let status = 401;
      let body: Record<string, unknown> = { error: 'invalid_token' };
      if (new URL(req.url ?? '/', 'http://x').pathname !== '/api') {
        status = 404;
        body = { error: 'not_found' };
      } else if (token !== undefined && !rejected.has(token)) {
        const introspection = await idp.introspect(token);
        if (introspection.active) {
          status = 200;
          body = { ok: true, sub: introspection.sub };
        }
      }
      requests.push({ at: Date.now(), token, status });
      res.writeHead(status, {
        'content-type': 'application/json',
        ...(status === 401 ? { 'www-authenticate': 'Bearer error="invalid_token"' } : {}),
      });
      res.end(JSON.stringify(body));
    })().catch(() => {
      res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/api`,
    requests,
    reject: (token) => void rejected.add(token),
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
