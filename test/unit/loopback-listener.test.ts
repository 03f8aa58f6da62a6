/**
 * The loopback redirect listener (RFC 8252 §7.3): one callback on 127.0.0.1, then gone.
 */
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { escapeHtml, isExpectedHost, isLoopbackAddress, startLoopbackListener, type LoopbackListener } from '../../daemon/loopback-listener.js';

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

const seenHeaders: http.IncomingHttpHeaders[] = [];

function request(port: number, options: { path?: string; method?: string; host?: string; address?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: options.address ?? '127.0.0.1',
        port,
        path: options.path ?? '/callback?code=c0de&state=st4te',
        method: options.method ?? 'GET',
        agent: false,
        setHost: false,
        headers: { Host: options.host ?? `127.0.0.1:${port}` },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          seenHeaders.push(res.headers);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function connect(port: number, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

const open: LoopbackListener[] = [];
async function listen(options: Partial<Parameters<typeof startLoopbackListener>[0]> = {}): Promise<LoopbackListener> {
  const listener = await startLoopbackListener({
    timeoutMs: 10_000,
    onCallback: () => Promise.resolve({ ok: true, message: 'Welcome back.' }),
    ...options,
  });
  open.push(listener);
  return listener;
}

afterEach(async () => {
  for (const listener of open.splice(0)) {
    listener.close();
    await listener.done;
  }
  // No answer of any test ever redirects (no open redirect).
  for (const headers of seenHeaders.splice(0)) expect(headers.location).toBeUndefined();
});

describe('startLoopbackListener', () => {
  it('binds the loopback literal on an ephemeral port, and nothing else', async () => {
    const a = await listen();
    const b = await listen();
    expect(a.redirectUri).toBe(`http://127.0.0.1:${a.port}/callback`);
    expect(a.port).toBeGreaterThan(0);
    expect(b.port).not.toBe(a.port);
    expect(await connect(a.port)).toBe('connected');
    expect(await connect(a.port, '::1')).toMatch(/ECONNREFUSED|EADDRNOTAVAIL|ENETUNREACH/);
    const external = Object.values(os.networkInterfaces())
      .flat()
      .find((i) => i !== undefined && i.family === 'IPv4' && !i.internal);
    if (external !== undefined) expect(await connect(a.port, external.address)).toBe('ECONNREFUSED');
  });

  it('hands the full redirect URL to onCallback, answers once, then stops listening', async () => {
    const onCallback = vi.fn(() => Promise.resolve({ ok: true, message: 'Welcome back.' }));
    const listener = await listen({ onCallback });

    const reply = await request(listener.port);
    expect(onCallback).toHaveBeenCalledExactlyOnceWith(`http://127.0.0.1:${listener.port}/callback?code=c0de&state=st4te`, { verifiedUser: true });
    expect(reply.status).toBe(200);
    expect(reply.body).toContain('Signed in — you can close this tab');
    expect(reply.body).toContain('Welcome back.');
    expect(await listener.done).toBe('callback');
    expect(await connect(listener.port)).toBe('ECONNREFUSED');
  });

  it('sends a self-contained page that is never cached and never leaks a Referer', async () => {
    const listener = await listen();
    const reply = await request(listener.port);
    expect(reply.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(reply.headers['cache-control']).toBe('no-store');
    expect(reply.headers['referrer-policy']).toBe('no-referrer');
    expect(reply.headers['content-security-policy']).toMatch(/^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'; .*frame-ancestors 'none'/);
    expect(reply.body).not.toMatch(/<script|<link|<img|https?:\/\//);
  });

  it('closes on timeout', async () => {
    const listener = await listen({ timeoutMs: 100 });
    expect(await listener.done).toBe('timeout');
    expect(await connect(listener.port)).toBe('ECONNREFUSED');
  });

  it('closes on close()', async () => {
    const listener = await listen();
    listener.close();
    listener.close();
    expect(await listener.done).toBe('closed');
    expect(await connect(listener.port)).toBe('ECONNREFUSED');
  });

  it('rejects a Host header other than 127.0.0.1:<port> or localhost:<port> (DNS rebinding) with 400', async () => {
    const onCallback = vi.fn(() => Promise.resolve({ ok: true, message: 'ok' }));
    const listener = await listen({ onCallback });
    for (const host of ['evil.example', `evil.example:${listener.port}`, `127.0.0.1:${listener.port + 1}`, '127.0.0.1', '']) {
      expect((await request(listener.port, { host })).status).toBe(400);
    }
    expect(onCallback).not.toHaveBeenCalled();
    expect((await request(listener.port, { host: `LOCALHOST:${listener.port}` })).status).toBe(200);
    expect(onCallback).toHaveBeenCalledOnce();
  });

  it('answers other methods with 405 and other paths with 404, and keeps waiting', async () => {
    const onCallback = vi.fn(() => Promise.resolve({ ok: true, message: 'ok' }));
    const listener = await listen({ onCallback });
    for (const method of ['POST', 'PUT', 'DELETE', 'HEAD']) {
      const reply = await request(listener.port, { method });
      expect(reply.status).toBe(405);
      expect(reply.headers.allow).toBe('GET');
    }
    for (const path of ['/', '/favicon.ico', '/callbackx?code=1', '/callback/extra', '/%63allback']) {
      expect((await request(listener.port, { path })).status).toBe(404);
    }
    expect(onCallback).not.toHaveBeenCalled();
    expect((await request(listener.port)).status).toBe(200);
  });

  it('serves a custom path', async () => {
    const listener = await listen({ path: '/oauth/done' });
    expect(listener.redirectUri).toBe(`http://127.0.0.1:${listener.port}/oauth/done`);
    expect((await request(listener.port)).status).toBe(404);
    expect((await request(listener.port, { path: '/oauth/done?code=x' })).status).toBe(200);
  });

  it('HTML-escapes the message, and a failed callback keeps the listener open', async () => {
    let attempt = 0;
    const listener = await listen({
      onCallback: () => Promise.resolve(++attempt === 1 ? { ok: false, message: `<script>alert("x")</script> & 'co'` } : { ok: true, message: 'ok' }),
    });
    const failed = await request(listener.port);
    expect(failed.status).toBe(400);
    expect(failed.body).toContain('Sign-in failed');
    expect(failed.body).toContain('&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; &#39;co&#39;');
    expect(failed.body).not.toContain('<script>');
    expect((await request(listener.port)).status).toBe(200);
    expect(await listener.done).toBe('callback');
  });

  it('closes after a failure marked close: true', async () => {
    const listener = await listen({ onCallback: () => Promise.resolve({ ok: false, message: 'access denied', close: true }) });
    expect((await request(listener.port)).status).toBe(400);
    expect(await listener.done).toBe('callback');
  });

  it('shows a generic message when onCallback throws, never its error', async () => {
    const listener = await listen({
      onCallback: () => Promise.reject(new Error('internal detail with code c0de')),
    });
    const reply = await request(listener.port);
    expect(reply.status).toBe(400);
    expect(reply.body).not.toContain('internal detail');
  });

  it('refuses bad options', async () => {
    await expect(startLoopbackListener({ path: 'callback', timeoutMs: 1, onCallback: () => Promise.resolve({ ok: true, message: '' }) })).rejects.toThrow(
      /options.path/,
    );
    await expect(startLoopbackListener({ timeoutMs: 0, onCallback: () => Promise.resolve({ ok: true, message: '' }) })).rejects.toThrow(/options.timeoutMs/);
  });
});

describe('loopback checks', () => {
  it('knows loopback peers (403 for anything else)', () => {
    for (const address of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) expect(isLoopbackAddress(address)).toBe(true);
    for (const address of ['10.0.0.1', '::ffff:10.0.0.1', '0.0.0.0', '::', 'fe80::1', undefined]) expect(isLoopbackAddress(address)).toBe(false);
  });

  it('accepts only loopback Host names with the right port', () => {
    expect(isExpectedHost('127.0.0.1:5000', 5000)).toBe(true);
    expect(isExpectedHost('localhost:5000', 5000)).toBe(true);
    expect(isExpectedHost('localhost.:5000', 5000)).toBe(false);
    expect(isExpectedHost('[::1]:5000', 5000)).toBe(false);
    expect(isExpectedHost(undefined, 5000)).toBe(false);
  });

  it('escapes the five HTML metacharacters', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;');
  });
});
