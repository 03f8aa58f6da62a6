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
 * - Closes after the first successful callback, on timeout, or on `close()`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-8.3
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CallbackOutcome {
  /** True when the authorization response was accepted. */
  readonly ok: boolean;
  /** Shown to the user in the browser (HTML-escaped). Must not contain a secret. */
  readonly message: string;
  /** Close the listener after this answer. @default ok */
  readonly close?: boolean;
}

export interface LoopbackListenerOptions {
  /** @default "/callback" */
  readonly path?: string;
  /** The listener closes by itself after this long. */
  readonly timeoutMs: number;
  /**
   * Called with the full redirect URL (`http://127.0.0.1:<port>/callback?code=…&state=…`). Checking
   * `state` and exchanging the code is the caller's job. A failed outcome keeps the listener open
   * (so a stray request with a wrong state cannot end a sign-in) unless it says `close: true`.
   */
  onCallback(url: string): Promise<CallbackOutcome>;
}

export type LoopbackCloseReason = 'callback' | 'timeout' | 'closed';

export interface LoopbackListener {
  /** `http://127.0.0.1:<port>/callback`: the redirect_uri of the authorization request. */
  readonly redirectUri: string;
  readonly port: number;
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

  async function handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    if (closing) return page(response, 503, 'This sign-in is over', 'You can close this tab.');
    if (!isLoopbackAddress(request.socket.remoteAddress)) return page(response, 403, 'Forbidden', 'Only this computer may answer here.');
    if (!isExpectedHost(request.headers.host, port)) return page(response, 400, 'Bad request', 'Unexpected Host header.');
    const target = request.url ?? '';
    if (!target.startsWith('/')) return page(response, 400, 'Bad request', 'Unexpected request target.');
    const pathname = target.split('?', 1)[0];
    if (pathname !== callbackPath) return page(response, 404, 'Not found', 'Nothing here.');
    if (request.method !== 'GET') {
      response.setHeader('Allow', 'GET');
      return page(response, 405, 'Method not allowed', 'Only GET is accepted here.');
    }
    if (busy) return page(response, 409, 'Please wait', 'A sign-in is already being completed in another tab.');

    busy = true;
    let outcome: CallbackOutcome;
    try {
      outcome = await options.onCallback(`http://${LOOPBACK_HOST}:${port}${target}`);
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

  const timer = setTimeout(() => shut('timeout'), options.timeoutMs);
  timer.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: LOOPBACK_HOST, port: 0, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;

  return {
    redirectUri: `http://${LOOPBACK_HOST}:${port}${callbackPath}`,
    port,
    close: () => shut('closed'),
    done,
  };
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

const STYLE =
  'body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}' +
  'h1{font-size:1.4rem}p{line-height:1.5}';
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
