/**
 * An HTTP reverse proxy on 127.0.0.1 that can break chosen requests on purpose: answer with an error status,
 * drop the connection, stall, or send a malformed body; forward late, or forward and then lose the answer; or
 * stop listening altogether (connections refused). Everything else is forwarded unchanged, `Host` header
 * included, so a server behind it builds its URLs from the public address.
 *
 * Request and response bodies are buffered whole (the IdP's messages are small); that lets observers read the
 * form a client posted and the JSON it got back, which is how the test IdP counts grants and collects secrets.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault =
  | { kind: 'status'; status: number; body?: string; headers?: Record<string, string> }
  | { kind: 'drop' }
  | { kind: 'stall'; ms: number }
  | { kind: 'body'; status: number; body: string; contentType?: string }
  /**
   * The request does reach the target (which acts on it: a code is spent, a refresh token rotated), after
   * `delayMs` (a slow provider); with `loseAnswer` its answer is then thrown away and the connection dropped
   * (a network failure on the way back). `onAnswer` is called the moment the target's answer is in, before it
   * is passed on or lost, so a test can act at exactly that point. `dropHeaders` removes response headers
   * (lower case; `date` is then not added by the proxy either). `rewrite` replaces the target's answer body
   * (a provider quirk: a field left out, a string for a number); observers see the rewritten answer.
   */
  | {
      kind: 'forward';
      delayMs?: number;
      loseAnswer?: boolean;
      onAnswer?: (status: number) => void;
      dropHeaders?: readonly string[];
      rewrite?: (body: string, status: number) => string;
    };

export interface FaultProxyRequest {
  method: string;
  /** pathname only, no query (queries can carry codes and state) */
  path: string;
  /** Date.now() when the request arrived */
  at: number;
  faulted: boolean;
  /** the status answered; undefined until answered, and forever for `drop` and `stall` */
  status?: number;
}

export interface FaultProxy {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /**
   * Faults apply to requests whose pathname starts with `match` (string) or matches it (RegExp); null clears
   * the rule for that same match. Rules are tried in the order they were first set; the first match wins.
   * Mind prefixes: '/token' also matches '/token/revocation'; use /^\/token$/ for the token endpoint alone.
   */
  setFault(match: string | RegExp, fault: Fault | null): void;
  clearFaults(): void;
  /**
   * false: stop listening and close every open connection, so new connections are refused (ECONNREFUSED: the
   * provider is down). true: listen again on the same port. Requests are not recorded while unreachable.
   */
  setReachable(reachable: boolean): Promise<void>;
  readonly requests: ReadonlyArray<FaultProxyRequest>;
  close(): Promise<void>;
}

/** One request as the proxy saw it, complete with its body. */
export interface ProxiedRequest {
  readonly method: string;
  readonly path: string;
  readonly at: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  readonly fault: Fault | undefined;
}

/** The answer the client got (from the target, or made up by a fault). */
export interface ProxiedResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface FaultProxyOptions {
  /** @default 0 (ephemeral) */
  readonly port?: number;
  /** Called once the request body is complete, before it is forwarded or faulted. */
  readonly onRequest?: (request: ProxiedRequest) => void;
  /** Called when an answer is sent; never for `drop`/`stall`, nor when the target could not be reached. */
  readonly onResponse?: (request: ProxiedRequest, response: ProxiedResponse) => void;
}

// RFC 9110 §7.6.1: connection-specific headers are not forwarded. Bodies are re-framed with content-length.
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade'];

function withoutHopByHop(headers: http.IncomingHttpHeaders): http.IncomingHttpHeaders {
  const copy = { ...headers };
  for (const name of HOP_BY_HOP) delete copy[name];
  return copy;
}

function readBody(stream: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
    stream.on('aborted', () => reject(new Error('request aborted')));
  });
}

function ruleKey(match: string | RegExp): string {
  return typeof match === 'string' ? `prefix:${match}` : `regexp:${match.source}/${match.flags}`;
}

function matches(match: string | RegExp, path: string): boolean {
  if (typeof match === 'string') return path.startsWith(match);
  match.lastIndex = 0; // a /g or /y RegExp keeps state between test() calls
  return match.test(path);
}

export async function startFaultProxy(target: string, options: FaultProxyOptions = {}): Promise<FaultProxy> {
  const upstream = new URL(target);
  const agent = new http.Agent({ keepAlive: true });
  const rules = new Map<string, { match: string | RegExp; fault: Fault }>();
  const requests: FaultProxyRequest[] = [];
  const stalls = new Set<NodeJS.Timeout>();

  const faultFor = (path: string): Fault | undefined => {
    for (const rule of rules.values()) if (matches(rule.match, path)) return rule.fault;
    return undefined;
  };

  const answer = (request: ProxiedRequest, entry: FaultProxyRequest, res: http.ServerResponse, response: ProxiedResponse): void => {
    entry.status = response.status;
    options.onResponse?.(request, response);
    res.writeHead(response.status, response.headers);
    res.end(response.body);
  };

  const applyFault = (fault: Fault, request: ProxiedRequest, entry: FaultProxyRequest, req: http.IncomingMessage, res: http.ServerResponse): void => {
    switch (fault.kind) {
      case 'drop':
        req.socket.destroy();
        return;
      case 'stall': {
        const timer = setTimeout(() => {
          stalls.delete(timer);
          req.socket.destroy();
        }, fault.ms);
        stalls.add(timer);
        res.on('close', () => {
          clearTimeout(timer);
          stalls.delete(timer);
        });
        return;
      }
      case 'status': {
        const body = Buffer.from(fault.body ?? '');
        const headers: http.IncomingHttpHeaders = {
          ...(body.length > 0 ? { 'content-type': 'text/plain; charset=utf-8' } : {}),
          ...lowerCaseKeys(fault.headers ?? {}),
          'content-length': String(body.length),
        };
        answer(request, entry, res, { status: fault.status, headers, body });
        return;
      }
      case 'body': {
        const body = Buffer.from(fault.body);
        const headers = {
          'content-type': fault.contentType ?? 'application/json; charset=utf-8',
          'content-length': String(body.length),
        };
        answer(request, entry, res, { status: fault.status, headers, body });
        return;
      }
      case 'forward': {
        const go = () => forward(request, entry, req, res, fault);
        if (!fault.delayMs) return go();
        const timer = setTimeout(() => {
          stalls.delete(timer);
          go();
        }, fault.delayMs);
        stalls.add(timer);
        return;
      }
    }
  };

  const forward = (
    request: ProxiedRequest,
    entry: FaultProxyRequest,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    fault?: Extract<Fault, { kind: 'forward' }>,
  ): void => {
    const headers = withoutHopByHop(req.headers); // keeps Host: the target sees the public address
    if (request.body.length > 0 || req.headers['content-length'] !== undefined) {
      headers['content-length'] = String(request.body.length);
    }
    const outgoing = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent }, (incoming) => {
      readBody(incoming).then(
        (original) => {
          const body = fault?.rewrite ? Buffer.from(fault.rewrite(original.toString('utf8'), incoming.statusCode ?? 502)) : original;
          const responseHeaders = withoutHopByHop(incoming.headers);
          if (req.method !== 'HEAD' && incoming.statusCode !== 204 && incoming.statusCode !== 304) {
            responseHeaders['content-length'] = String(body.length);
          }
          for (const name of fault?.dropHeaders ?? []) delete responseHeaders[name];
          if (fault?.dropHeaders?.includes('date')) res.sendDate = false;
          fault?.onAnswer?.(incoming.statusCode ?? 502);
          if (fault?.loseAnswer) {
            req.socket.destroy();
            return;
          }
          answer(request, entry, res, { status: incoming.statusCode ?? 502, headers: responseHeaders, body });
        },
        () => req.socket.destroy(),
      );
    });
    outgoing.on('error', () => {
      if (res.headersSent) {
        req.socket.destroy();
        return;
      }
      entry.status = 502;
      res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('fault-proxy: target unreachable');
    });
    outgoing.end(request.body);
  };

  const server = http.createServer((req, res) => {
    const at = Date.now();
    readBody(req).then(
      (body) => {
        const path = new URL(req.url ?? '/', 'http://proxy.invalid').pathname;
        const fault = faultFor(path);
        const entry: FaultProxyRequest = { method: req.method ?? 'GET', path, at, faulted: fault !== undefined };
        requests.push(entry);
        const request: ProxiedRequest = { method: entry.method, path, at, headers: req.headers, body, fault };
        options.onRequest?.(request);
        if (fault) applyFault(fault, request, entry, req, res);
        else forward(request, entry, req, res);
      },
      () => req.socket.destroy(), // the client went away mid-request
    );
  });

  const listen = (at: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(at, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(options.port ?? 0);
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    setFault(match, fault) {
      const key = ruleKey(match);
      if (fault === null) rules.delete(key);
      else rules.set(key, { match, fault }); // replacing keeps the rule's original position
    },
    clearFaults() {
      rules.clear();
    },
    async setReachable(reachable) {
      if (reachable === server.listening) return;
      if (reachable) return listen(port);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
    requests,
    async close() {
      for (const timer of stalls) clearTimeout(timer);
      stalls.clear();
      if (!server.listening) {
        agent.destroy();
        return;
      }
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      agent.destroy();
      await closed;
    },
  };
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
}
