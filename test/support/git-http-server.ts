/**
 * git's smart HTTP protocol from a local bare repository: `git http-backend` run as a CGI program behind
 * a small node:http server on 127.0.0.1 that requires HTTP Basic auth whose password is a live token of
 * the test IdP (introspection, RFC 7662). Anything else gets 401 with `WWW-Authenticate: Basic`.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestIdp } from './idp.js';

export interface GitRequest {
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly status: number;
}

export interface GitHttpServer {
  /** http://127.0.0.1:PORT */
  readonly origin: string;
  readonly requests: readonly GitRequest[];
  /** Answer 401 for this password from now on, even if the IdP still says it is active. */
  reject(password: string): void;
  close(): Promise<void>;
}

export async function startGitHttpServer(idp: TestIdp, projectRoot: string): Promise<GitHttpServer> {
  const requests: GitRequest[] = [];
  const rejected = new Set<string>();
  const server = http.createServer((req, res) => {
    void (async () => {
      const basic = /^Basic ([A-Za-z0-9+/=]+)$/.exec(req.headers.authorization ?? '')?.[1];
      const decoded = basic === undefined ? undefined : Buffer.from(basic, 'base64').toString('utf8');
      const username = decoded?.slice(0, decoded.indexOf(':'));
      const password = decoded?.slice(decoded.indexOf(':') + 1);
      const ok = password !== undefined && !rejected.has(password) && (await idp.introspect(password)).active;
      if (!ok) {
        requests.push({ username, password, status: 401 });
        req.resume();
        res.writeHead(401, { 'www-authenticate': 'Basic realm="tokenbroker-test"', 'content-type': 'text/plain' }).end('token required\n');
        return;
      }
      requests.push({ username, password, status: 200 });
      const url = new URL(req.url ?? '/', 'http://x');
      // RFC 3875 CGI variables that git http-backend reads.
      const cgi = spawn('git', ['http-backend'], {
        env: {
          PATH: process.env['PATH'],
          GIT_PROJECT_ROOT: projectRoot,
          GIT_HTTP_EXPORT_ALL: '1',
          REQUEST_METHOD: req.method ?? 'GET',
          PATH_INFO: decodeURIComponent(url.pathname),
          QUERY_STRING: url.search.slice(1),
          CONTENT_TYPE: req.headers['content-type'] ?? '',
          REMOTE_USER: username ?? '',
          REMOTE_ADDR: '127.0.0.1',
          ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: req.headers['content-encoding'] } : {}),
          ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
        },
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      req.pipe(cgi.stdin);
      const chunks: Buffer[] = [];
      cgi.stdout.on('data', (c: Buffer) => chunks.push(c));
      await new Promise<void>((resolve) => cgi.once('close', () => resolve()));
      const output = Buffer.concat(chunks);
      const split = output.indexOf('\r\n\r\n');
      const head = output.subarray(0, split).toString('latin1');
      const headers: Record<string, string> = {};
      let status = 200;
      for (const line of head.split('\r\n')) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
        else headers[name] = value;
      }
      res.writeHead(status, headers).end(output.subarray(split + 4));
    })().catch((error: unknown) => res.writeHead(500).end(String(error)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    reject: (password) => void rejected.add(password),
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
