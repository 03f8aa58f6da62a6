/**
 * oidc-agent always authenticates as a confidential client (HTTP Basic), while the test IdP's client is a
 * native public client (token_endpoint_auth_method "none", as RFC 8252 prescribes). This forward proxy,
 * given to oidc-agent only as its `http_proxy` (libcurl honours it), moves the client id from the Basic
 * header into the form body and forwards everything else unchanged to the same IdP. It is on the agent's
 * refresh path only; a cached-token hand-out never reaches it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface AuthShim {
  readonly url: string;
  /** Requests forwarded. */
  readonly forwarded: number;
  close(): Promise<void>;
}

export async function startAuthShim(): Promise<AuthShim> {
  let forwarded = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      // Proxy requests carry the absolute URL; only loopback targets are forwarded.
      const target = new URL(req.url ?? '/', `http://${req.headers.host ?? '127.0.0.1'}`);
      if (target.hostname !== '127.0.0.1' && target.hostname !== 'localhost') {
        res.writeHead(403).end('loopback only');
        return;
      }
      const headers: http.OutgoingHttpHeaders = { ...req.headers };
      delete headers['proxy-connection'];
      delete headers.connection;
      let body = Buffer.concat(chunks);
      const auth = req.headers.authorization;
      if (auth?.startsWith('Basic ') && String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
        const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
        const clientId = decodeURIComponent(decoded.slice(0, decoded.indexOf(':')));
        const form = new URLSearchParams(body.toString('utf8'));
        form.set('client_id', clientId);
        body = Buffer.from(form.toString());
        delete headers.authorization;
      }
      headers['content-length'] = String(body.length);
      forwarded += 1;
      const upstream = http.request(
        { host: target.hostname, port: target.port, path: target.pathname + target.search, method: req.method, headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', (error) => res.writeHead(502).end(String(error)));
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get forwarded() {
      return forwarded;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
