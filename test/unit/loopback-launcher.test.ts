/**
 * The one-time sign-in launcher of the loopback listener, and the peer-uid check (daemon/peer-uid.ts)
 * that guards launcher and callback alike: the /proc/net/tcp{,6} parsing, then a real listener.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startLoopbackListener, type LoopbackListener } from '../../daemon/loopback-listener.js';
import { endpointKey, findSocketUid, parseProcEndpoint, parseProcTcpLine, peerUid } from '../../daemon/peer-uid.js';
import { tempDir } from '../support/temp-dir.js';

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
// Two ends of one connection 127.0.0.1:51000 → 127.0.0.1:8080: the listener's accepted socket (uid 1000)
// and the peer's socket (uid 1001), plus the listening socket; little-endian, as on x86 and arm64.
const TCP = [
  HEADER,
  '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 11 1 0000000000000000 100 0 0 10 0',
  '   1: 0100007F:1F90 0100007F:C738 01 00000000:00000000 00:00000000 00000000  1000        0 12 1 0000000000000000 20 4 30 10 -1',
  '   2: 0100007F:C738 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1001        0 13 1 0000000000000000 20 4 30 10 -1',
].join('\n');
const TCP6 = [
  '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  // A dual-stack peer socket connected from ::ffff:127.0.0.1 port 51002 to 127.0.0.1:8080, uid 1002.
  '   0: 0000000000000000FFFF00000100007F:C73A 0000000000000000FFFF00000100007F:1F90 01 00000000:00000000 00:00000000 00000000  1002        0 14 1 0000000000000000 20 4 30 10 -1',
  // ::1 port 8080, uid 1003.
  '   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1003        0 15 1 0000000000000000 100 0 0 10 0',
].join('\n');

describe('peer-uid: /proc/net/tcp and tcp6 lines', () => {
  it('decodes IPv4 endpoints in either byte order, and the port in hex', () => {
    expect(parseProcEndpoint('0100007F:1F90', true)).toBe('127.0.0.1:8080');
    expect(parseProcEndpoint('7F000001:1F90', false)).toBe('127.0.0.1:8080');
    expect(parseProcEndpoint('0101A8C0:0050', true)).toBe('192.168.1.1:80');
  });

  it('decodes IPv6 endpoints; IPv4-mapped ones read as IPv4', () => {
    expect(parseProcEndpoint('0000000000000000FFFF00000100007F:C73A', true)).toBe('127.0.0.1:51002');
    expect(parseProcEndpoint('00000000000000000000000001000000:1F90', true)).toBe('[0:0:0:0:0:0:0:1]:8080');
    expect(parseProcEndpoint('00000000000000000000000000000001:1F90', false)).toBe('[0:0:0:0:0:0:0:1]:8080');
    expect(endpointKey({ address: '::1', port: 8080 })).toBe('[0:0:0:0:0:0:0:1]:8080');
    expect(endpointKey({ address: '::ffff:127.0.0.1', port: 51002 })).toBe('127.0.0.1:51002');
    expect(endpointKey({ address: '127.0.0.1', port: 8080 })).toBe('127.0.0.1:8080');
  });

  it('refuses what is not an endpoint or a socket line', () => {
    for (const bad of ['', '0100007F', '0100007F:1F9', 'G100007F:1F90', '0100007F:1F90:00', '0000000000000000FFFF0000100007F:1F90']) {
      expect(parseProcEndpoint(bad, true), bad).toBeUndefined();
    }
    expect(parseProcTcpLine(HEADER, true)).toBeUndefined();
    expect(parseProcTcpLine('   0: 0100007F:1F90 0100007F:C738 01 00000000:00000000 00:00000000 00000000  x 0 1', true)).toBeUndefined();
    expect(parseProcTcpLine('garbage', true)).toBeUndefined();
    expect(endpointKey({ address: 'localhost', port: 1 })).toBeUndefined();
    expect(endpointKey({ address: '127.0.0.1', port: 70000 })).toBeUndefined();
  });

  it('reads the uid column of a line', () => {
    expect(parseProcTcpLine(TCP.split('\n')[3]!, true)).toEqual({ local: '127.0.0.1:51000', remote: '127.0.0.1:8080', uid: 1001 });
  });

  it("finds the peer's socket (its local address is our remote one), not our own end of the connection", () => {
    // Our end: local 127.0.0.1:8080, remote 127.0.0.1:51000 (uid 1000). The peer's: the reverse (uid 1001).
    expect(findSocketUid(TCP, '127.0.0.1:51000', '127.0.0.1:8080', true)).toBe(1001);
    expect(findSocketUid(TCP, '127.0.0.1:8080', '127.0.0.1:51000', true)).toBe(1000);
    expect(findSocketUid(TCP, '127.0.0.1:51001', '127.0.0.1:8080', true)).toBeUndefined();
    expect(findSocketUid(TCP6, '127.0.0.1:51002', '127.0.0.1:8080', true)).toBe(1002);
  });

  it('peerUid: looks in both files, and says "unknown" when neither has the peer, "unsupported" off Linux', async () => {
    const dir = tempDir('tb-proc-');
    try {
      const tcp = path.join(dir, 'tcp');
      const tcp6 = path.join(dir, 'tcp6');
      fs.writeFileSync(tcp, TCP);
      fs.writeFileSync(tcp6, TCP6);
      const little = (await import('node:os')).endianness() === 'LE';
      if (!little) throw new Error('these fixtures are little-endian');
      const ours = { address: '127.0.0.1', port: 8080 };
      const files = [tcp, tcp6];
      expect(await peerUid({ local: ours, remote: { address: '127.0.0.1', port: 51000 } }, { platform: 'linux', files })).toBe(1001);
      expect(
        await peerUid(
          { local: { address: '::ffff:127.0.0.1', port: 8080 }, remote: { address: '::ffff:127.0.0.1', port: 51002 } },
          { platform: 'linux', files },
        ),
      ).toBe(1002);
      expect(await peerUid({ local: ours, remote: { address: '127.0.0.1', port: 51009 } }, { platform: 'linux', files })).toBe('unknown');
      expect(await peerUid({ local: ours, remote: { address: '127.0.0.1', port: 51000 } }, { platform: 'linux', files: [path.join(dir, 'missing')] })).toBe(
        'unknown',
      );
      expect(await peerUid({ local: ours, remote: { address: '127.0.0.1', port: 51000 } }, { platform: 'darwin', files })).toBe('unsupported');
      expect(await peerUid({ local: ours, remote: { address: '127.0.0.1', port: 51000 } }, { platform: 'win32', files })).toBe('unsupported');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(process.platform !== 'linux')('finds our own uid for a real connection on this machine', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const client = net.connect({ port, host: '127.0.0.1' });
    try {
      const socket = await accepted;
      const uid = await peerUid({
        local: { address: socket.localAddress!, port: socket.localPort! },
        remote: { address: socket.remoteAddress!, port: socket.remotePort! },
      });
      expect(uid).toBe(process.getuid!());
      socket.destroy();
    } finally {
      client.destroy();
      server.close();
    }
  });
});

// ---- the launcher -------------------------------------------------------------------------------

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

function get(url: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (c: string) => (body += c));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
    });
    request.on('error', reject);
    request.end();
  });
}

const TARGET = 'https://login.example.com/authorize?client_id=c&state=S&nonce=N&code_challenge=C';
const open: LoopbackListener[] = [];
async function listen(options: Partial<Parameters<typeof startLoopbackListener>[0]> = {}): Promise<LoopbackListener> {
  const listener = await startLoopbackListener({ timeoutMs: 10_000, launcher: { target: () => TARGET, onReplay: () => {} }, ...options });
  open.push(listener);
  return listener;
}

afterEach(async () => {
  for (const listener of open.splice(0)) {
    listener.close();
    await listener.done;
  }
});

describe('the one-time launcher', () => {
  it('is a /start/ URL with 256 random bits; the first fetch redirects to the authorization URL, uncached', async () => {
    const listener = await listen();
    const url = new URL(listener.launchUrl!);
    expect(url.origin).toBe(`http://127.0.0.1:${listener.port}`);
    expect(url.pathname).toMatch(/^\/start\/[A-Za-z0-9_-]{43}$/);
    expect(listener.launchUrl).not.toBe((await listen()).launchUrl);
    const reply = await get(listener.launchUrl!);
    expect(reply.status).toBe(302);
    expect(reply.headers.location).toBe(TARGET);
    expect(reply.headers['cache-control']).toBe('no-store');
    expect(reply.headers['referrer-policy']).toBe('no-referrer');
  });

  it('a second fetch reports the replay (the sign-in is aborted) and gives no URL', async () => {
    const onReplay = vi.fn();
    const listener = await listen({ launcher: { target: () => TARGET, onReplay } });
    expect((await get(listener.launchUrl!)).status).toBe(302);
    expect(onReplay).not.toHaveBeenCalled();
    const second = await get(listener.launchUrl!);
    expect(second.status).toBe(410);
    expect(second.headers.location).toBeUndefined();
    expect(second.body).not.toContain('state=S');
    expect(second.body).toMatch(/opened twice/);
    expect(onReplay).toHaveBeenCalledOnce();
  });

  it('wrong tokens, other methods and other paths launch nothing and abort nothing', async () => {
    const onReplay = vi.fn();
    const listener = await listen({ launcher: { target: () => TARGET, onReplay } });
    const base = `http://127.0.0.1:${listener.port}`;
    const token = new URL(listener.launchUrl!).pathname.slice('/start/'.length);
    for (const target of [`/start/${token.slice(0, -1)}`, `/start/${token}x`, '/start/', '/start', `/START/${token}`, '/callback?state=x&code=y']) {
      const reply = await get(base + target);
      expect(reply.status, target).toBe(404);
      expect(reply.headers.location, target).toBeUndefined();
    }
    expect((await get(listener.launchUrl!, 'POST')).status).toBe(405);
    expect(onReplay).not.toHaveBeenCalled();
    expect((await get(listener.launchUrl!)).headers.location).toBe(TARGET);
  });

  it('answers 503 (and counts nothing) until the authorization URL is known', async () => {
    let target: string | undefined = undefined;
    const onReplay = vi.fn();
    const listener = await listen({ launcher: { target: () => target, onReplay } });
    expect((await get(listener.launchUrl!)).status).toBe(503);
    target = TARGET;
    expect((await get(listener.launchUrl!)).status).toBe(302);
    expect(onReplay).not.toHaveBeenCalled();
  });

  it('a listener that only launches (custom-scheme profiles) serves no callback', async () => {
    const listener = await listen();
    expect((await get(`http://127.0.0.1:${listener.port}/callback?code=x&state=y`)).status).toBe(404);
    expect((await get(listener.launchUrl!)).status).toBe(302);
  });
});

describe('who may call: the peer-uid check', () => {
  it('another uid gets 403 at the launcher and the callback, and changes nothing', async () => {
    const onReplay = vi.fn();
    const onCallback = vi.fn(() => Promise.resolve({ ok: true, message: 'ok' }));
    let peer: number | 'unknown' = 4242;
    const listener = await listen({ uid: 1000, peerUid: () => Promise.resolve(peer), launcher: { target: () => TARGET, onReplay }, onCallback });
    for (let i = 0; i < 3; i++) {
      const launch = await get(listener.launchUrl!);
      expect(launch.status).toBe(403);
      expect(launch.headers.location).toBeUndefined();
      expect((await get(`http://127.0.0.1:${listener.port}/callback?code=x&state=y`)).status).toBe(403);
    }
    peer = 'unknown'; // Linux, but the peer's socket was not found: refused all the same
    expect((await get(listener.launchUrl!)).status).toBe(403);
    expect((await get(`http://127.0.0.1:${listener.port}/callback?code=x&state=y`)).status).toBe(403);
    expect(onReplay).not.toHaveBeenCalled();
    expect(onCallback).not.toHaveBeenCalled();
    // The user's own fetch is still the first launch, and the callback still arrives.
    peer = 1000;
    expect((await get(listener.launchUrl!)).headers.location).toBe(TARGET);
    expect((await get(`http://127.0.0.1:${listener.port}/callback?code=x&state=y`)).status).toBe(200);
    expect(onCallback).toHaveBeenCalledExactlyOnceWith(`http://127.0.0.1:${listener.port}/callback?code=x&state=y`, { verifiedUser: true });
  });

  it('where the OS tells no peer uid, callers are let through and marked unverified', async () => {
    const onCallback = vi.fn(() => Promise.resolve({ ok: false, message: 'no' }));
    const listener = await listen({ uid: 1000, peerUid: () => Promise.resolve('unsupported' as const), onCallback });
    expect((await get(listener.launchUrl!)).status).toBe(302);
    expect((await get(`http://127.0.0.1:${listener.port}/callback?code=x&state=y`)).status).toBe(400);
    expect(onCallback).toHaveBeenCalledWith(expect.any(String), { verifiedUser: false });
  });
});

describe('a fixed port', () => {
  it('is bound as asked; a port already taken fails with EADDRINUSE', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const free = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const fixed = await listen({ port: free, path: '/cb', onCallback: () => Promise.resolve({ ok: true, message: '' }) });
    expect(fixed.port).toBe(free);
    expect(fixed.redirectUri).toBe(`http://127.0.0.1:${free}/cb`);
    await expect(listen({ port: free, onCallback: () => Promise.resolve({ ok: true, message: '' }) })).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });
});
