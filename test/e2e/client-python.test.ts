/**
 * The reference Python client (clients/python/tokenbroker.py, standard library only) against the real
 * daemon: owner check, hello, token.get, errors with codes, events, reconnect.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCommand, tempDir, waitFor } from '../support/daemon.js';
import { startSignedIn, type SignedIn } from '../support/signed-in.js';

const PYTHONPATH = path.join(ROOT, 'clients/python');
let s: SignedIn;

beforeAll(async () => {
  s = await startSignedIn();
}, 90_000);
afterAll(async () => {
  await s?.close();
});

/** Runs a Python snippet with the client importable; it prints one JSON value. */
async function python(code: string, env: NodeJS.ProcessEnv = {}): Promise<unknown> {
  const r = await runCommand(['python3', '-c', `import json, tokenbroker\n${code}`], {
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], PYTHONPATH, PYTHONDONTWRITEBYTECODE: '1', ...s.env, ...env },
    timeoutMs: 30_000,
  });
  if (r.code !== 0) throw new Error(`python exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const errorOf = (call: string) => `
try:
    ${call}
    print(json.dumps(None))
except tokenbroker.BrokerError as e:
    print(json.dumps({"code": e.code, "message": e.message, "field": e.field}))`;

describe('the Python client', () => {
  it('hello, then token.get: the same token the daemon hands the TypeScript client', async () => {
    const current = await s.app.getToken();
    const result = (await python(`
with tokenbroker.connect(client="py-test/1") as b:
    print(json.dumps({"hello": b.hello_result, "token": b.get_token()}))`)) as { hello: Record<string, unknown>; token: Record<string, unknown> };
    expect(result.hello).toMatchObject({ protocolVersion: 1, methods: expect.arrayContaining(['token.get', 'subscribe']) as unknown });
    expect(result.token).toEqual({ ...current });
  });

  it('status lists the profile; never a token', async () => {
    const status = (await python(`
with tokenbroker.connect() as b:
    print(json.dumps(b.status()))`)) as { profiles: Array<{ name: string; state: string }> };
    expect(status.profiles.map((p) => [p.name, p.state])).toEqual([['main', 'active']]);
    expect(JSON.stringify(status)).not.toContain((await s.app.getToken()).accessToken);
  });

  it('errors carry the protocol’s codes and fields', async () => {
    expect(await python(`b = tokenbroker.connect()\n${errorOf('b.get_token(profile="nope")')}`)).toMatchObject({ code: 'PROFILE_NOT_FOUND' });
    expect(await python(`b = tokenbroker.connect()\n${errorOf('b.get_token(min_valid_seconds=99999)')}`)).toMatchObject({
      code: 'BAD_REQUEST',
      field: 'params.minValidSeconds',
    });
    expect(await python(`b = tokenbroker.connect()\n${errorOf('b.request("hello", {"protocolVersion": 2})')}`)).toMatchObject({
      code: 'UNSUPPORTED_PROTOCOL',
      field: 'params.protocolVersion',
    });
  });

  it('no daemon → DAEMON_NOT_RUNNING', async () => {
    const dir = tempDir('tb-py-');
    expect(await python(errorOf('tokenbroker.connect()'), { TOKENBROKER_SOCKET: path.join(dir, 'none.sock') })).toMatchObject({ code: 'DAEMON_NOT_RUNNING' });
  });

  it('a socket owned by another user is refused before anything is sent (SOCKET_UNTRUSTED)', async () => {
    const dir = tempDir('tb-py-');
    const socketPath = path.join(dir, 'impostor.sock');
    let connections = 0;
    const impostor = net.createServer((c) => {
      connections++;
      c.destroy();
    });
    await new Promise<void>((resolve) => impostor.listen(socketPath, () => resolve()));
    try {
      fs.chownSync(socketPath, 65534, 65534); // the tests run as root: hand the socket to "nobody"
      expect(await python(errorOf('tokenbroker.connect()'), { TOKENBROKER_SOCKET: socketPath })).toMatchObject({ code: 'SOCKET_UNTRUSTED' });
      fs.chownSync(socketPath, process.getuid!(), process.getgid!());
      fs.chmodSync(dir, 0o777); // a directory others could write to: someone could swap the socket
      expect(await python(errorOf('tokenbroker.connect()'), { TOKENBROKER_SOCKET: socketPath })).toMatchObject({ code: 'SOCKET_UNTRUSTED' });
      expect(connections).toBe(0);
    } finally {
      await new Promise<void>((resolve) => impostor.close(() => resolve()));
    }
  });

  it('subscribe: receives tokenRefreshed when the broker refreshes', async () => {
    const child = spawn(
      'python3',
      [
        '-c',
        `import json, sys, tokenbroker
b = tokenbroker.connect()
b.subscribe(["tokenRefreshed"])
print("subscribed", flush=True)
for event in b.events(timeout=20):
    print(json.dumps(event), flush=True)
    break`,
      ],
      { env: { PATH: process.env['PATH'], PYTHONPATH, PYTHONDONTWRITEBYTECODE: '1', ...s.env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await waitFor(
      () => out.includes('subscribed'),
      15_000,
      () => `python to subscribe: ${err}`,
    );
    const old = await s.app.getToken();
    const fresh = await s.app.getToken({ rejected: old.accessToken }); // one refresh
    expect(await exited).toBe(0);
    const event = JSON.parse(out.split('\n')[1]!) as { event: string; data: { profile: string; expiresAt: number } };
    expect(event).toEqual({ event: 'tokenRefreshed', data: { profile: 'main', expiresAt: fresh.expiresAt } });
  });

  it('reconnect after a daemon restart: CONNECTION_LOST first, then a new connection (hello, subscribe again) answers', async () => {
    const dir = tempDir('tb-py-');
    const flag = path.join(dir, 'restarted');
    const child = spawn(
      'python3',
      [
        '-c',
        `import json, os, time, tokenbroker
b = tokenbroker.connect()
b.subscribe()
print("ready", flush=True)
while not os.path.exists(${JSON.stringify(flag)}):
    time.sleep(0.05)
try:
    b.status()
    print(json.dumps("still connected?"), flush=True)
except tokenbroker.BrokerError as e:
    first = e.code
b.reconnect()
print(json.dumps({"first": first, "token": b.get_token()["profile"], "pid": b.status()["pid"]}), flush=True)`,
      ],
      { env: { PATH: process.env['PATH'], PYTHONPATH, PYTHONDONTWRITEBYTECODE: '1', ...s.env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await waitFor(
      () => out.includes('ready'),
      15_000,
      () => `python to connect: ${err}`,
    );
    const daemon = await s.harness.restart();
    fs.writeFileSync(flag, '');
    expect(await exited, err).toBe(0);
    expect(JSON.parse(out.split('\n')[1]!)).toEqual({ first: 'CONNECTION_LOST', token: 'main', pid: daemon.child.pid });
  }, 60_000);
});
