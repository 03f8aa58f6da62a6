/**
 * The client library (client/) on its own: the queue that keeps at most MAX_IN_FLIGHT_PER_CONNECTION calls
 * on the wire, aborts (before connecting, while queued, while on the wire), timeouts, close, and the
 * reconnect that brings subscriptions back after the daemon restarts. Through the public API only
 * (`connect`, its options, BrokerError), against a small in-process server on a private Unix socket that
 * speaks the wire framing of proto/ and answers as the test tells it to.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BrokerError, connect, type BrokerClient, type BrokerEvent } from '../../client/index.js';
import {
  ENVELOPE_EVENT,
  ENVELOPE_REQUEST,
  ENVELOPE_RESPONSE,
  FrameDecoder,
  MAX_IN_FLIGHT_PER_CONNECTION,
  PROTOCOL_VERSION,
  encodeFrame,
} from '../../proto/index.js';
import { tempDir } from '../support/temp-dir.js';

interface Request {
  readonly id: number;
  readonly method: string;
  readonly params: Record<string, unknown>;
  readonly socket: net.Socket;
}

/**
 * A daemon stand-in: answers `hello` (and `subscribe`, `unsubscribe`) at once and holds every other request
 * until the test answers it. Counts connections; can drop them all (a daemon restart) and push events.
 */
class FakeDaemon {
  readonly requests: Request[] = [];
  readonly sockets = new Set<net.Socket>();
  connections = 0;
  private readonly server: net.Server;
  private readonly waiters: (() => void)[] = [];

  private constructor(readonly socketPath: string) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  static async start(socketPath: string): Promise<FakeDaemon> {
    const daemon = new FakeDaemon(socketPath);
    await new Promise<void>((resolve, reject) => {
      daemon.server.once('error', reject);
      daemon.server.listen(socketPath, resolve);
    });
    return daemon;
  }

  private accept(socket: net.Socket): void {
    this.connections++;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    socket.setEncoding('utf8');
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: string) => {
      for (const { type, data } of decoder.push(chunk)) {
        if (type !== ENVELOPE_REQUEST) continue;
        const request = { ...(data as Omit<Request, 'socket'>), socket };
        if (request.method === 'hello') {
          this.answer(request, { protocolVersion: PROTOCOL_VERSION, daemonVersion: 'fake', methods: [] });
        } else if (request.method === 'subscribe' || request.method === 'unsubscribe') {
          this.requests.push(request);
          this.answer(request, {});
        } else {
          this.requests.push(request);
        }
        for (const wake of this.waiters.splice(0)) wake();
      }
    });
  }

  /** Requests (hello excepted) still waiting for an answer, in the order they arrived. */
  held(method = 'status'): Request[] {
    return this.requests.filter((r) => r.method === method && !this.answered.has(r));
  }

  private readonly answered = new Set<Request>();

  answer(request: Request, result: unknown): void {
    this.answered.add(request);
    request.socket.write(encodeFrame(ENVELOPE_RESPONSE, { id: request.id, result }));
  }

  /** Sends an event to every connected client. */
  emit(event: BrokerEvent): void {
    for (const socket of this.sockets) socket.write(encodeFrame(ENVELOPE_EVENT, event));
  }

  /** Drops every connection, as a daemon that exits does. */
  dropAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  /** Resolves once `predicate` holds (checked after each request that arrives), or fails after `ms`. */
  async until(predicate: () => boolean, what: string, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await Promise.race([new Promise<void>((resolve) => this.waiters.push(resolve)), delay(50)]);
    }
  }

  async close(): Promise<void> {
    this.dropAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The BrokerError a promise rejects with (fails the test when it resolves or throws something else). */
async function brokerError(promise: Promise<unknown>): Promise<BrokerError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BrokerError);
  return error as BrokerError;
}

const statusResult = (tag: number) => ({ daemonVersion: 'fake', uptimeSeconds: tag, clients: 1, profiles: [] });

let dir: string;
let daemon: FakeDaemon;
let client: BrokerClient | undefined;

beforeEach(async () => {
  dir = tempDir('tb-client-');
  daemon = await FakeDaemon.start(path.join(dir, 'broker.sock'));
});

afterEach(async () => {
  await client?.close();
  client = undefined;
  await daemon.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('client (unit): the in-flight queue', () => {
  it(`keeps at most ${MAX_IN_FLIGHT_PER_CONNECTION} calls on the wire, sends the rest in order as slots free`, async () => {
    client = await connect({ socketPath: daemon.socketPath, reconnect: false });
    const total = MAX_IN_FLIGHT_PER_CONNECTION + 10;
    const settled: number[] = [];
    const calls = Array.from({ length: total }, (_, i) => client!.status({ profile: `p${i}` }).then((result) => settled.push(result.uptimeSeconds)));

    await daemon.until(() => daemon.held().length === MAX_IN_FLIGHT_PER_CONNECTION, 'the first slots to fill');
    await delay(200); // time for any call beyond the limit to arrive, were it sent
    expect(daemon.held()).toHaveLength(MAX_IN_FLIGHT_PER_CONNECTION);
    expect(daemon.held().map((r) => r.params['profile'])).toEqual(Array.from({ length: MAX_IN_FLIGHT_PER_CONNECTION }, (_, i) => `p${i}`));

    // Free three slots: exactly the next three queued calls go out, in the order they were made.
    for (const request of daemon.held().slice(0, 3)) daemon.answer(request, statusResult(Number(String(request.params['profile']).slice(1))));
    await daemon.until(() => daemon.requests.length === MAX_IN_FLIGHT_PER_CONNECTION + 3, 'three queued calls');
    await delay(200);
    expect(daemon.requests).toHaveLength(MAX_IN_FLIGHT_PER_CONNECTION + 3);
    expect(daemon.requests.slice(MAX_IN_FLIGHT_PER_CONNECTION).map((r) => r.params['profile'])).toEqual(
      [0, 1, 2].map((i) => `p${MAX_IN_FLIGHT_PER_CONNECTION + i}`),
    );

    // Answer everything as it comes: every call resolves with its own answer.
    while (daemon.requests.length < total || daemon.held().length > 0) {
      for (const request of daemon.held()) daemon.answer(request, statusResult(Number(String(request.params['profile']).slice(1))));
      await daemon.until(() => daemon.held().length > 0 || daemon.requests.length === total, 'more calls');
      expect(daemon.held().length).toBeLessThanOrEqual(MAX_IN_FLIGHT_PER_CONNECTION);
    }
    await Promise.all(calls);
    expect([...settled].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i));
  });
});

describe('client (unit): aborts', () => {
  it('a call whose signal is already aborted fails with ABORTED and sends nothing', async () => {
    client = await connect({ socketPath: daemon.socketPath, reconnect: false });
    const error = await brokerError(client.status({ profile: 'x', signal: AbortSignal.abort() }));
    expect(error.code).toBe('ABORTED');
    await delay(100);
    expect(daemon.held()).toHaveLength(0);
  });

  it('aborting a call on the wire fails it with ABORTED and frees its slot for the next queued call', async () => {
    client = await connect({ socketPath: daemon.socketPath, reconnect: false });
    const controller = new AbortController();
    const first = client.status({ profile: 'aborted', signal: controller.signal });
    const fillers = Array.from({ length: MAX_IN_FLIGHT_PER_CONNECTION - 1 }, (_, i) => client!.status({ profile: `f${i}` }));
    const queued = client.status({ profile: 'queued' });
    await daemon.until(() => daemon.held().length === MAX_IN_FLIGHT_PER_CONNECTION, 'a full connection');

    controller.abort();
    expect((await brokerError(first)).code).toBe('ABORTED');
    await daemon.until(() => daemon.held().some((r) => r.params['profile'] === 'queued'), 'the queued call to take the freed slot');

    for (const request of daemon.held()) daemon.answer(request, statusResult(1));
    await Promise.all([...fillers, queued]);
  });

  it('aborting a queued call fails it with ABORTED; it never reaches the daemon and the next one takes the slot', async () => {
    client = await connect({ socketPath: daemon.socketPath, reconnect: false });
    const fillers = Array.from({ length: MAX_IN_FLIGHT_PER_CONNECTION }, (_, i) => client!.status({ profile: `f${i}` }));
    await daemon.until(() => daemon.held().length === MAX_IN_FLIGHT_PER_CONNECTION, 'a full connection');
    const controller = new AbortController();
    const aborted = client.status({ profile: 'aborted', signal: controller.signal });
    await delay(100); // in the queue now, first in line
    const next = client.status({ profile: 'next' });
    await delay(100);

    controller.abort();
    expect((await brokerError(aborted)).code).toBe('ABORTED');
    daemon.answer(daemon.held()[0]!, statusResult(1));
    await daemon.until(() => daemon.held().some((r) => r.params['profile'] === 'next'), 'the next call');
    expect(daemon.requests.some((r) => r.params['profile'] === 'aborted')).toBe(false);

    for (const request of daemon.held()) daemon.answer(request, statusResult(2));
    await Promise.all([...fillers, next]);
  });

  it('an aborted connect fails with ABORTED', async () => {
    const error = await brokerError(connect({ socketPath: daemon.socketPath, reconnect: false, signal: AbortSignal.abort() }));
    expect(error.code).toBe('ABORTED');
    // connect() opens the socket before it looks at the signal, and nothing awaits that attempt any more: let it
    // finish here, or the daemon's close in afterEach makes it fail as an unhandled rejection.
    await daemon.until(() => daemon.connections === 1, 'the stray connection attempt');
    await delay(200);
  });
});

describe('client (unit): failures and close', () => {
  it('nothing listening → DAEMON_NOT_RUNNING, naming the socket', async () => {
    const socketPath = path.join(dir, 'nobody.sock');
    const error = await brokerError(connect({ socketPath, reconnect: false }));
    expect(error.code).toBe('DAEMON_NOT_RUNNING');
    expect(error.message).toContain(socketPath);
  });

  it('a call with no answer fails with TIMEOUT after its own timeout', async () => {
    client = await connect({ socketPath: daemon.socketPath, reconnect: false });
    const started = Date.now();
    const error = await brokerError(client.status({ profile: 'slow', timeoutMs: 300 }));
    expect(error.code).toBe('TIMEOUT');
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it('a dropped connection fails the calls on the wire with CONNECTION_LOST', async () => {
    client = await connect({ socketPath: daemon.socketPath, reconnect: false });
    const call = client.status({ profile: 'x' });
    await daemon.until(() => daemon.held().length === 1, 'the call');
    daemon.dropAll();
    expect((await brokerError(call)).code).toBe('CONNECTION_LOST');
  });

  it('close() fails pending calls with CONNECTION_LOST, and later calls too', async () => {
    client = await connect({ socketPath: daemon.socketPath, reconnect: false });
    const call = client.status({ profile: 'x' });
    await daemon.until(() => daemon.held().length === 1, 'the call');
    await client.close();
    expect((await brokerError(call)).code).toBe('CONNECTION_LOST');
    expect((await brokerError(client.status({ profile: 'y' }))).code).toBe('CONNECTION_LOST');
  });
});

describe('client (unit): reconnect', () => {
  const event: BrokerEvent = { event: 'loggedOut', data: { profile: 'default' } };

  it('with a subscriber, reconnects after the daemon drops it, subscribes again and delivers events', async () => {
    client = await connect({ socketPath: daemon.socketPath });
    const events: BrokerEvent[] = [];
    await client.subscribe((e) => events.push(e));
    expect(daemon.connections).toBe(1);

    daemon.dropAll();
    await daemon.until(
      () => daemon.connections === 2 && daemon.requests.filter((r) => r.method === 'subscribe').length === 2,
      'a reconnect and a new subscribe',
    );
    daemon.emit(event);
    await daemon.until(() => events.length === 1, 'the event', 5_000);
    expect(events).toEqual([event]);
  });

  it('keeps trying while the daemon is away, and comes back once it listens again', async () => {
    client = await connect({ socketPath: daemon.socketPath });
    const events: BrokerEvent[] = [];
    await client.subscribe((e) => events.push(e));
    await daemon.close();
    await delay(600); // several attempts against no listener
    daemon = await FakeDaemon.start(daemon.socketPath);
    await daemon.until(() => daemon.requests.some((r) => r.method === 'subscribe'), 'a subscribe on the restarted daemon');
    daemon.emit(event);
    await daemon.until(() => events.length === 1, 'the event', 5_000);
    expect(events).toEqual([event]);
  });

  it('with reconnect: false, stays disconnected until the next call, which connects again', async () => {
    client = await connect({ socketPath: daemon.socketPath, reconnect: false });
    await client.subscribe(() => {});
    daemon.dropAll();
    await delay(500); // well past the first reconnect delay (100 ms)
    expect(daemon.connections).toBe(1);

    const call = client.status({ profile: 'again' });
    await daemon.until(() => daemon.held().length === 1, 'the call on a new connection');
    expect(daemon.connections).toBe(2);
    daemon.answer(daemon.held()[0]!, statusResult(7));
    expect((await call).uptimeSeconds).toBe(7);
  });

  it('without subscribers, a dropped connection is not re-opened in the background', async () => {
    client = await connect({ socketPath: daemon.socketPath });
    daemon.dropAll();
    await delay(500);
    expect(daemon.connections).toBe(1);
  });
});
