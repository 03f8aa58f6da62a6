/**
 * The loopback redirect (RFC 8252 §7.3): a one-shot HTTP listener on 127.0.0.1 and an ephemeral port
 * that receives the authorization response where no custom-scheme handler can be registered.
 *
 * - Binds the IPv4 loopback literal only, never 0.0.0.0 (RFC 8252 §8.3: the IP literal, not "localhost",
 *   so no resolver or firewall can send the redirect elsewhere).
 * - Serves GET on one path; any other path is 404 and any other method 405.
 * - Refuses peers that are not loopback (403) and Host headers other than 127.0.0.1:<port> or
 *   localhost:<port> (400): a web page that rebinds a DNS name to 127.0.0.1 cannot reach it.
 * - Answers with a small self-contained page: no external resources and `Referrer-Policy: no-referrer`,
 *   so the code in the URL never leaks in a Referer (RFC 9700 §4.2); `Cache-Control: no-store`
 *   (§4.3); `frame-ancestors 'none'` against clickjacking (§4.16). It never redirects anywhere, so it
 *   cannot be an open redirector (§4.11).
 * - Checks who is calling (see peer-uid.ts): on Linux a connection from another uid is answered 403
 *   before anything else happens; where the peer's uid cannot be found it is refused too (fail closed).
 *   Where the OS tells no peer uid (macOS, Windows) callers are let through, marked unverified.
 * - Optionally serves a one-time launcher, `/start/<random>`: the URL the browser is opened with, so the
 *   authorization URL (state, nonce, PKCE challenge) never appears on a command line. Its first fetch
 *   answers 302 to the authorization URL; any later fetch is reported (`onReplay`), which aborts the
 *   sign-in, and answers 410 without the URL.
 * - Closes after the first successful callback, on timeout, or on `close()`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-8.3
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { peerUid as procPeerUid, type PeerUid, type TcpConnection } from './peer-uid.js';

export interface CallbackOutcome {
  /** True when the authorization response was accepted. */
  readonly ok: boolean;
  /** Shown to the user in the browser (HTML-escaped). Must not contain a secret. */
  readonly message: string;
  /** Close the listener after this answer. @default ok */
  readonly close?: boolean;
}

/** Who delivered a request, as far as the OS tells. */
export interface Caller {
  /** The peer's uid was looked up and is ours (Linux). False where the OS gives no peer uid. */
  readonly verifiedUser: boolean;
}

/** The one-time launcher: `/start/<random>` sends the browser on to `target()` once. */
export interface LauncherOptions {
  /** The authorization URL; known once the request is built (after the listener has its port). */
  target(): string | undefined;
  /** The launcher was fetched again after it had launched: the caller aborts the sign-in. */
  onReplay(): void;
}

export interface LoopbackListenerOptions {
  /** The callback path; no callback is served without `onCallback`. @default "/callback" */
  readonly path?: string;
  /** A fixed port (a configured `http://127.0.0.1:<port>/…` redirect URI). @default 0 (ephemeral) */
  readonly port?: number;
  /** The listener closes by itself after this long. */
  readonly timeoutMs: number;
  /**
   * Called with the full redirect URL (`http://127.0.0.1:<port>/callback?code=…&state=…`). Checking
   * `state` and exchanging the code is the caller's job. A failed outcome keeps the listener open
   * (so a stray request with a wrong state cannot end a sign-in) unless it says `close: true`.
   * Absent: the listener only launches (custom-scheme profiles).
   */
  onCallback?(url: string, caller: Caller): Promise<CallbackOutcome>;
  /** Serve the one-time launcher. */
  readonly launcher?: LauncherOptions;
  /** Finds the uid of a connection's peer. @default /proc/net/tcp{,6} on Linux (peer-uid.ts) */
  readonly peerUid?: (connection: TcpConnection) => Promise<PeerUid>;
  /** The uid allowed to call. @default process.getuid() */
  readonly uid?: number;
}

export type LoopbackCloseReason = 'callback' | 'timeout' | 'closed';

export interface LoopbackListener {
  /** `http://127.0.0.1:<port>/callback`: the redirect_uri of the authorization request. */
  readonly redirectUri: string;
  readonly port: number;
  /** `http://127.0.0.1:<port>/start/<random>` when a launcher is served: the URL to open in the browser. */
  readonly launchUrl?: string;
  /** Stops listening now. Idempotent. */
  close(): void;
  /** Resolves once the listener is closed, with why. */
  readonly done: Promise<LoopbackCloseReason>;
}

const LOOPBACK_HOST = '127.0.0.1';

export async function startLoopbackListener(options: LoopbackListenerOptions): Promise<LoopbackListener> {
  const callbackPath = options.path ?? '/callback';
  if (!callbackPath.startsWith('/') || /[?#\s]/.test(callbackPath)) {
    throw new TypeError(`startLoopbackListener: options.path must be a plain absolute path such as "/callback"`);
  }
  if (!Number.isFinite(options.timeoutMs) || options.timeoutMs <= 0) {
    throw new TypeError('startLoopbackListener: options.timeoutMs must be a positive number of milliseconds');
  }
  const fixedPort = options.port ?? 0;
  if (!Number.isInteger(fixedPort) || fixedPort < 0 || fixedPort > 65535) {
    throw new TypeError('startLoopbackListener: options.port must be an integer from 0 to 65535');
  }
  const lookUpPeer = options.peerUid ?? procPeerUid;
  const ownUid = options.uid ?? process.getuid?.();
  // ≥ 128 bits (here 256) of randomness: the launcher path cannot be guessed, only read where it was put.
  const launchPath = options.launcher ? `/start/${randomBytes(32).toString('base64url')}` : undefined;
  let launches = 0;

  const server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000 });
  let port = 0;
  let busy = false;
  let closing = false;
  let resolveDone!: (reason: LoopbackCloseReason) => void;
  const done = new Promise<LoopbackCloseReason>((resolve) => (resolveDone = resolve));

  const shut = (reason: LoopbackCloseReason): void => {
    if (closing) return;
    closing = true;
    clearTimeout(timer);
    server.close(() => resolveDone(reason));
    server.closeIdleConnections();
    // Answers already sent close their connections themselves (Connection: close); anything still
    // open after a moment (a stalled request) is cut.
    setTimeout(() => server.closeAllConnections(), 1_000).unref();
  };

  server.on('request', (request, response) => {
    void handle(request, response);
  });

  /** Whose connection this is: the same uid (true, or "unverified" where the OS cannot tell) or not. */
  async function checkPeer(request: http.IncomingMessage): Promise<boolean | 'unverified'> {
    const { socket } = request;
    if (socket.localAddress === undefined || socket.localPort === undefined || socket.remoteAddress === undefined || socket.remotePort === undefined)
      return false;
    let uid: PeerUid;
    try {
      uid = await lookUpPeer({
        local: { address: socket.localAddress, port: socket.localPort },
        remote: { address: socket.remoteAddress, port: socket.remotePort },
      });
    } catch {
      uid = 'unknown';
    }
    if (uid === 'unsupported') return 'unverified';
    return typeof uid === 'number' && ownUid !== undefined && uid === ownUid;
  }

  async function handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    if (closing) return page(response, 503, 'This sign-in is over', 'You can close this tab.');
    if (!isLoopbackAddress(request.socket.remoteAddress)) return page(response, 403, 'Forbidden', 'Only this computer may answer here.');
    // Another user of this computer (or a caller whose uid cannot be found) learns nothing and changes nothing.
    const peer = await checkPeer(request);
    if (peer === false) return page(response, 403, 'Forbidden', 'This sign-in belongs to another user of this computer.');
    if (closing) return page(response, 503, 'This sign-in is over', 'You can close this tab.');
    if (!isExpectedHost(request.headers.host, port)) return page(response, 400, 'Bad request', 'Unexpected Host header.');
    const target = request.url ?? '';
    if (!target.startsWith('/')) return page(response, 400, 'Bad request', 'Unexpected request target.');
    const pathname = target.split('?', 1)[0]!;
    if (launchPath !== undefined && options.launcher && sameText(pathname, launchPath)) return launch(request, response, options.launcher);
    if (pathname !== callbackPath || !options.onCallback) return page(response, 404, 'Not found', 'Nothing here.');
    if (request.method !== 'GET') {
      response.setHeader('Allow', 'GET');
      return page(response, 405, 'Method not allowed', 'Only GET is accepted here.');
    }
    if (busy) return page(response, 409, 'Please wait', 'A sign-in is already being completed in another tab.');

    busy = true;
    let outcome: CallbackOutcome;
    try {
      outcome = await options.onCallback(`http://${LOOPBACK_HOST}:${port}${target}`, { verifiedUser: peer === true });
    } catch {
      outcome = { ok: false, message: 'The sign-in could not be completed. Please return to the application.' };
    } finally {
      busy = false;
    }
    const status = outcome.ok ? 200 : 400;
    const title = outcome.ok ? 'Signed in' : 'Sign-in failed';
    if (outcome.close ?? outcome.ok) response.once('finish', () => shut('callback'));
    page(response, status, title, outcome.message);
  }

  /** The launcher: 302 to the authorization URL the first time; every later fetch aborts the sign-in. */
  function launch(request: http.IncomingMessage, response: http.ServerResponse, launcher: LauncherOptions): void {
    if (request.method !== 'GET') {
      response.setHeader('Allow', 'GET');
      return page(response, 405, 'Method not allowed', 'Only GET is accepted here.');
    }
    const target = launcher.target();
    if (target === undefined) return page(response, 503, 'Not ready', 'The sign-in is still being prepared; reload this page in a moment.');
    launches++;
    if (launches > 1) {
      launcher.onReplay();
      return page(
        response,
        410,
        'This sign-in link was already used',
        'The link that starts this sign-in was opened twice, so the sign-in was stopped: someone else may have opened it. Start a new sign-in from your application (or run "tokenbroker login").',
      );
    }
    response.writeHead(302, {
      Location: target,
      'Content-Length': 0,
      'Cache-Control': 'no-store',
      Pragma: 'no-cache',
      'Referrer-Policy': 'no-referrer',
      Connection: 'close',
    });
    response.end();
  }

  const timer = setTimeout(() => shut('timeout'), options.timeoutMs);
  timer.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: LOOPBACK_HOST, port: fixedPort, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;

  return {
    redirectUri: `http://${LOOPBACK_HOST}:${port}${callbackPath}`,
    port,
    ...(launchPath === undefined ? {} : { launchUrl: `http://${LOOPBACK_HOST}:${port}${launchPath}` }),
    close: () => shut('closed'),
    done,
  };
}

/** Constant-time comparison of two paths (the launcher's is a secret). */
function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** 127.0.0.0/8 and ::1, including the IPv4-mapped form. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4) || address === '::1';
}

/** DNS-rebinding defence: the browser must have addressed us by loopback name and our port. */
export function isExpectedHost(host: string | undefined, port: number): boolean {
  if (host === undefined) return false;
  const value = host.toLowerCase();
  return value === `${LOOPBACK_HOST}:${port}` || value === `localhost:${port}`;
}

// ---- the page shown in the browser ------------------------------------------------------------

const STYLE = 'body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}' + 'h1{font-size:1.4rem}p{line-height:1.5}';
const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');
const CSP = `default-src 'none'; style-src 'sha256-${STYLE_HASH}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(response: http.ServerResponse, status: number, title: string, message: string): void {
  const heading = status === 200 ? `${title} — you can close this tab` : title;
  const body =
    `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>` +
    `<body><h1>${escapeHtml(heading)}</h1><p>${escapeHtml(message)}</p></body></html>`;
  response.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    Pragma: 'no-cache',
    'Referrer-Policy': 'no-referrer',
    'Content-Security-Policy': CSP,
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    Connection: 'close',
  });
  response.end(body);
}
