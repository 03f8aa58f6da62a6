import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type BrokerClient } from '../../client/index.js';
import { INCOMPLETE_FRAME_TIMEOUT_MS, MAX_MESSAGE_BYTES } from '../../proto/index.js';
import { rawConnect } from '../support/raw-client.js';
import { startDaemon, type DaemonProcess } from '../support/daemon.js';

let daemon: DaemonProcess;
let bystander: BrokerClient;

beforeAll(async () => {
  daemon = await startDaemon({ logLevel: 'info' });
  bystander = await connect({ socketPath: daemon.socketPath, clientName: 'bystander' });
});
afterAll(async () => {
  await bystander?.close();
  await daemon?.stop('SIGKILL');
});

/** After each hostile input the daemon is alive and another client is still served. */
async function stillServing(): Promise<void> {
  expect(daemon.child.exitCode).toBeNull();
  const status = await bystander.status({ timeoutMs: 2_000 });
  expect(status.pid).toBe(daemon.child.pid);
}

describe('bad input on the socket', () => {
  it('garbage bytes: error answer, that connection closed', async () => {
    const raw = await rawConnect(daemon.socketPath, { hello: false });
    raw.write('\u0000\u0001\u00ffgarbage\f');
    const answer = await raw.next();
    expect(answer.type).toBe('response');
    expect(answer.data).toMatchObject({ id: null, error: { code: 'BAD_REQUEST' } });
    await raw.closed;
    await stillServing();
  });

  it('a frame ended with a newline instead of \\f: an answer naming the framing at once, then close', async () => {
    const raw = await rawConnect(daemon.socketPath, { hello: false });
    const sent = Date.now();
    raw.write(JSON.stringify({ type: 'request', data: { id: 1, method: 'hello', params: { protocolVersion: 1 } } }) + '\n');
    const answer = await raw.next();
    expect(answer.data).toMatchObject({ id: null, error: { code: 'BAD_REQUEST', message: expect.stringMatching(/form feed.*not with a newline/) as unknown } });
    // Well before the incomplete-frame timeout that such a client used to wait for.
    expect(Date.now() - sent).toBeLessThan(INCOMPLETE_FRAME_TIMEOUT_MS / 2);
    await raw.closed;
    await stillServing();
  });

  it('invalid JSON in a frame: error answer naming the problem, then close', async () => {
    const raw = await rawConnect(daemon.socketPath);
    raw.write('{"type":"request","data":{"id":1,\f');
    const answer = await raw.next();
    expect(answer.data['error']).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(/not valid JSON/) as unknown });
    await raw.closed;
    await stillServing();
  });

  it('an oversized frame: error answer, then close', async () => {
    const raw = await rawConnect(daemon.socketPath);
    raw.write('{"type":"request","data":{"id":1,"method":"status","params":{"pad":"' + 'x'.repeat(MAX_MESSAGE_BYTES + 10) + '"}}}\f');
    const answer = await raw.next();
    expect(answer.data['error']).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(/maximum message size/) as unknown });
    await raw.closed;
    await stillServing();
  });

  it('an unknown envelope type or a reserved one: error answer, then close', async () => {
    for (const type of ['response', 'connect', '__proto__', 'whatever']) {
      const raw = await rawConnect(daemon.socketPath);
      raw.write(JSON.stringify({ type, data: { id: 1 } }) + '\f');
      const answer = await raw.next();
      expect(answer.data['error']).toMatchObject({ code: 'BAD_REQUEST' });
      await raw.closed;
    }
    await stillServing();
  });

  it('an unknown method, a missing id or wrong params: BAD_REQUEST naming the field, connection stays open', async () => {
    const raw = await rawConnect(daemon.socketPath);
    raw.request(1, 'token.steal', {});
    expect((await raw.next()).data).toMatchObject({ id: 1, error: { code: 'BAD_REQUEST', field: 'method' } });
    raw.write(JSON.stringify({ type: 'request', data: { method: 'status' } }) + '\f');
    expect((await raw.next()).data).toMatchObject({ id: null, error: { code: 'BAD_REQUEST', field: 'id' } });
    raw.request(2, 'subscribe', { events: 'all' });
    expect((await raw.next()).data).toMatchObject({ id: 2, error: { code: 'BAD_REQUEST', field: 'params.events' } });
    raw.request(3, 'status', {});
    expect((await raw.next()).data).toMatchObject({ id: 3, result: { pid: daemon.child.pid } });
    raw.close();
    await stillServing();
  });

  it('requests before hello are refused; an unsupported protocol version gets UNSUPPORTED_PROTOCOL', async () => {
    const raw = await rawConnect(daemon.socketPath, { hello: false });
    raw.request(1, 'status', {});
    expect((await raw.next()).data).toMatchObject({ id: 1, error: { code: 'BAD_REQUEST', field: 'method' } });
    raw.request(2, 'hello', { protocolVersion: 2 });
    const answer = await raw.next();
    expect(answer.data).toMatchObject({ id: 2, error: { code: 'UNSUPPORTED_PROTOCOL', field: 'params.protocolVersion' } });
    expect(String((answer.data['error'] as { message: string }).message)).toMatch(/speaks protocol version 1/);
    raw.request(3, 'hello', { protocolVersion: 1 });
    expect((await raw.next()).data).toMatchObject({ id: 3, result: { protocolVersion: 1 } });
    raw.close();
  });

  it('a half frame left open (slow client) is closed after the incomplete-frame timeout; others are served meanwhile', async () => {
    const raw = await rawConnect(daemon.socketPath);
    const started = Date.now();
    raw.write('{"type":"request","data":{"id":1,"met');
    await stillServing();
    await raw.closed;
    const elapsed = Date.now() - started;
    // Not before the timeout (a slow client is given its 5 s), and not never (generous for a loaded machine).
    expect(elapsed).toBeGreaterThanOrEqual(INCOMPLETE_FRAME_TIMEOUT_MS - 100);
    expect(elapsed).toBeLessThan(INCOMPLETE_FRAME_TIMEOUT_MS + 10_000);
    await stillServing();
  });

  it('pipelined requests in one write each get exactly one answer with their id', async () => {
    const raw = await rawConnect(daemon.socketPath);
    let batch = '';
    for (let id = 1; id <= 100; id++) batch += JSON.stringify({ type: 'request', data: { id, method: 'status' } }) + '\f';
    raw.write(batch);
    const ids = new Set<unknown>();
    for (let i = 0; i < 100; i++) ids.add((await raw.next()).data['id']);
    expect(ids.size).toBe(100);
    raw.close();
  });
});
