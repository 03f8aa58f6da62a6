/**
 * URL rules shared by the config and the provider metadata: https except on a loopback host, and the
 * redirect URIs a native app may use (RFC 8252 §7.1, §7.3, §8.3). A leaf: imports only the error type.
 */
import { BrokerError } from '../../proto/errors.js';

/** An issuer must be https, except on a loopback host (local test providers). */
export function checkHttpsUrl(value: string, field: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new BrokerError('BAD_REQUEST', `${field}: expected an absolute URL such as "https://login.example.com", got ${JSON.stringify(value)}`, { field });
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw new BrokerError('BAD_REQUEST', `${field}: must use https (http is allowed only for 127.0.0.1, [::1] and localhost)`, { field });
  }
  if (url.search !== '' || url.hash !== '') {
    throw new BrokerError('BAD_REQUEST', `${field}: must not have a query or fragment`, { field });
  }
  return value;
}

/** "loopback", a private-use scheme URI (RFC 8252 §7.1), or an http loopback URI (§7.3). */
export function checkRedirectUri(value: string, field: string): void {
  if (value === 'loopback') return;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new BrokerError('BAD_REQUEST', `${field}: expected "loopback" or a URI such as "com.example.broker:/callback", got ${JSON.stringify(value)}`, {
      field,
    });
  }
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) {
    // RFC 8252 §7.3, §8.3: the IPv4 literal, which is what the listener binds. "localhost" may resolve
    // to ::1 first, and [::1] is a port nobody listens on: another local program could take either.
    if (loopbackRedirect(value) === undefined) {
      throw new BrokerError(
        'BAD_REQUEST',
        `${field}: a loopback redirect must be http://127.0.0.1[:port]/path (the IP literal the broker listens on; RFC 8252 §8.3), no query or fragment, or just "loopback"`,
        { field },
      );
    }
    return;
  }
  if (url.protocol === 'https:' || url.protocol === 'http:') {
    throw new BrokerError('BAD_REQUEST', `${field}: a web URL cannot reach the broker; use a custom scheme or "loopback"`, { field });
  }
  // RFC 8252 §7.1: a reverse-domain scheme the app controls.
  if (!/^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+:$/.test(url.protocol)) {
    throw new BrokerError('BAD_REQUEST', `${field}: use a reverse-domain scheme such as "com.example.broker:/callback" (RFC 8252 §7.1)`, { field });
  }
}

/**
 * Where the loopback listener of a redirect URI listens: `"loopback"` → any free port and
 * `/callback`; `http://127.0.0.1:18080/cb` → port 18080 (fixed), `/cb`; `http://127.0.0.1/cb` → any
 * free port, `/cb` (RFC 8252 §7.3: providers accept any port for a loopback URI registered without one).
 * Undefined for anything else (custom schemes, other hosts).
 */
export function loopbackRedirect(redirectUri: string): { readonly port: number; readonly path: string } | undefined {
  if (redirectUri === 'loopback') return { port: 0, path: '/callback' };
  const match = /^http:\/\/127\.0\.0\.1(?::(\d{1,5}))?(\/[A-Za-z0-9._~/-]*)?$/.exec(redirectUri);
  if (!match || /\/\.\.?(\/|$)/.test(match[2] ?? '')) return undefined; // the browser would normalise dot segments
  const port = match[1] === undefined ? 0 : Number(match[1]);
  if (match[1] !== undefined && (port < 1 || port > 65535)) return undefined;
  return { port, path: match[2] ?? '/' };
}

export function isLoopbackHost(host: string): boolean {
  return host === '127.0.0.1' || host === '[::1]' || host === '::1' || host === 'localhost';
}
