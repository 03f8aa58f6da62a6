/**
 * The local socket server: node-ipc (Assured profile) underneath, our request/response protocol on top.
 * Each connection gets exactly one answer per request, in any order; events go to subscribers only.
 */
import fs from 'node:fs';
import type { Server as NetServer, Socket } from 'node:net';
import { IPCModule } from 'node-ipc';
import {
  BrokerError,
  ENVELOPE_EVENT,
  ENVELOPE_REQUEST,
  ENVELOPE_RESPONSE,
  EVENT_NAMES,
  INCOMPLETE_FRAME_TIMEOUT_MS,
  MAX_IN_FLIGHT_PER_CONNECTION,
  MAX_MESSAGE_BYTES,
  METHOD_NAMES,
  PROTOCOL_VERSION,
  SUPPORTED_PROTOCOL_VERSIONS,
  parseRequest,
  salvageRequestId,
  type BrokerEvent,
  type EventName,
  type HelloResult,
  type MethodName,
  type ParamsOf,
  type Request,
  type RequestId,
} from '../../proto/index.js';
import { FairShare } from './fair-share.js';
import { BrokerParser, REJECTED_FRAME, isRejectedFrame } from './ipc-parser.js';
import type { Logger } from '../log.js';

/** What a handler knows about the request it answers. */
export interface RequestContext {
  readonly connectionId: number;
  readonly clientName: string | undefined;
  /** Aborted when the connection closes: stop waiting on its behalf. */
  readonly signal: AbortSignal;
}

export type Handler<M extends MethodName> = (params: ParamsOf<M>, context: RequestContext) => unknown;

/** Handlers for every method except the ones the server answers itself (hello, subscribe, unsubscribe). */
export type Handlers = { readonly [M in Exclude<MethodName, 'hello' | 'subscribe' | 'unsubscribe'>]: Handler<M> };

interface ClientConnection {
  readonly id: number;
  readonly socket: Socket;
  readonly abort: AbortController;
  /** Date.now() at accept: the `hello` deadline counts from here. */
  readonly connectedAt: number;
  /** Answer bytes queued in user space at the last look (socket.writableLength); part of the global total. */
  queued: number;
  /** Bytes handed to the kernel when the queue last moved, and when that was (write-stall timeout). */
  flushedBytes: number;
  flushedAt: number;
  /** Reading paused because too many answers are queued (backpressure); resumed on 'drain'. */
  paused: boolean;
  /** Requests wait beyond this connection's share of the event loop (see FairShare); reading paused. */
  backlogged: boolean;
  /** Small reads in a row that left a partial frame (a client dripping bytes); see DRIP_DAMPING_MS. */
  partialReads: number;
  /** Reading paused for DRIP_DAMPING_MS so that dripped bytes arrive in one read. */
  damped: boolean;
  /** What handlers get; one object per connection (renewed by hello), not one per request. */
  context: RequestContext;
  clientName: string | undefined;
  helloDone: boolean;
  inFlight: number;
  subscribed: ReadonlySet<EventName> | undefined;
  closing: boolean;
}

export interface IpcServerOptions {
  readonly socketPath: string;
  readonly daemonVersion: string;
  readonly log: Logger;
  readonly handlers: Handlers;
  /**
   * Open connections allowed; a newcomer beyond this closes the least recently active idle connection
   * (or, with none idle, is refused with SERVER_BUSY). @default MAX_CONNECTIONS, lowered to fit the
   * open-files limit
   */
  readonly maxConnections?: number;
  /** @default MAX_QUEUED_BYTES_TOTAL */
  readonly maxQueuedBytesTotal?: number;
  /** @default WRITE_STALL_TIMEOUT_MS */
  readonly writeStallTimeoutMs?: number;
  /** @default HELLO_TIMEOUT_MS */
  readonly helloTimeoutMs?: number;
}

// ---- Limits (documented in proto/README.md, "Limits"; figures in docs/hardening-figures.md) -----------

/** Open connections allowed at most (many apps, each with a few). */
export const MAX_CONNECTIONS = 8192;
/** Answers queued (unsent) for one connection at most; beyond, node-ipc closes that connection. */
export const MAX_QUEUED_BYTES_PER_CONNECTION = 4 * 1024 * 1024;
/** Answers queued for all connections together at most; beyond, the biggest stalled queue is cut first. */
export const MAX_QUEUED_BYTES_TOTAL = 64 * 1024 * 1024;
/**
 * With this much queued for a connection the daemon stops reading its requests until the queue drains
 * (backpressure): a client that does not read its answers cannot make the daemon work on its behalf.
 */
export const READ_PAUSE_QUEUED_BYTES = 64 * 1024;
/** A connection whose queued answers make no progress this long is closed. */
export const WRITE_STALL_TIMEOUT_MS = 15_000;
/** A connection that has not completed `hello` this long after connecting is closed. */
export const HELLO_TIMEOUT_MS = 5_000;
/** Requests of one connection handled per event-loop turn; more wait in its backlog (reading paused). */
export const REQUESTS_PER_CONNECTION_PER_TURN = 32;
/** Backlogged requests handled per event-loop turn over all connections. */
export const BACKLOGGED_REQUESTS_PER_TURN = 256;
/**
 * A connection whose reads keep delivering a few bytes of a frame (DRIP_READS_BEFORE_DAMPING reads in a row,
 * each under DRIP_READ_BYTES) is not read for DRIP_DAMPING_MS: the kernel gathers what it drips meanwhile, and
 * the next read takes it all. A dripped frame then costs the daemon a read per pause instead of a read per
 * byte; clients that write whole frames never meet it.
 */
export const DRIP_READ_BYTES = 512;
export const DRIP_READS_BEFORE_DAMPING = 4;
export const DRIP_DAMPING_MS = 25;
/** How often the hello deadlines and write stalls are checked. */
const SWEEP_INTERVAL_MS = 1_000;
/** File descriptors kept free for everything else the daemon opens (keychain, provider, log). */
const RESERVED_FDS = 256;

export class IpcServer {
  private readonly ipc = new IPCModule();
  private readonly connections = new Map<Socket, ClientConnection>();
  private nextConnectionId = 1;
  private inFlightTotal = 0;
  private stopping = false;
  private drained: (() => void) | undefined;
  private socketIno: number | undefined;
  private readonly maxConnections: number;
  private readonly maxQueuedBytesTotal: number;
  private readonly writeStallTimeoutMs: number;
  private readonly helloTimeoutMs: number;
  /** Connections still waiting for `hello`, oldest first (the hello deadline). */
  private readonly awaitingHello = new Set<ClientConnection>();
  /** Connections with answers queued in user space, and their sum (an upper bound between 'drain's). */
  private readonly queuedConnections = new Set<ClientConnection>();
  private queuedTotal = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly fair = new FairShare<ClientConnection, unknown>({
    perConnection: REQUESTS_PER_CONNECTION_PER_TURN,
    perTurn: BACKLOGGED_REQUESTS_PER_TURN,
    run: (connection, data) => this.handle(connection, data),
    ready: (connection) => !connection.paused && !connection.closing,
    backlogChanged: (connection, backlogged) => {
      connection.backlogged = backlogged;
      this.updateReading(connection);
    },
  });

  constructor(private readonly options: IpcServerOptions) {
    this.maxConnections = options.maxConnections ?? defaultMaxConnections();
    this.maxQueuedBytesTotal = options.maxQueuedBytesTotal ?? MAX_QUEUED_BYTES_TOTAL;
    this.writeStallTimeoutMs = options.writeStallTimeoutMs ?? WRITE_STALL_TIMEOUT_MS;
    this.helloTimeoutMs = options.helloTimeoutMs ?? HELLO_TIMEOUT_MS;
  }

  get connectedClients(): number {
    return this.connections.size;
  }

  /** Listens on the socket (mode 0600). The caller has checked that no other daemon owns it. */
  async start(): Promise<void> {
    const { socketPath } = this.options;
    const ipcSocketRoot = process.platform === 'win32' ? '/' : dirnameWithSlash(socketPath);
    Object.assign(this.ipc.config, {
      silent: true,
      logPayloads: false,
      parser: BrokerParser,
      allowedEvents: [ENVELOPE_REQUEST, ENVELOPE_RESPONSE, ENVELOPE_EVENT],
      maxMessageSize: MAX_MESSAGE_BYTES,
      maxPendingBytes: MAX_QUEUED_BYTES_PER_CONNECTION,
      messageTimeout: INCOMPLETE_FRAME_TIMEOUT_MS,
      unlink: false, // single-instance logic is ours: never remove a live daemon's socket
      secureSocketRoot: true,
      socketRoot: ipcSocketRoot,
      readableAll: false,
      writableAll: false,
      // Our own policy applies at maxConnections (see onConnect); Node's hard limit above it only
      // covers connections still closing (an evicted one lingers up to HALF_CLOSE_GRACE_MS).
      maxConnections: this.maxConnections + Math.max(64, Math.ceil(this.maxConnections / 8)),
    });
    this.ipc.serve(socketPath);
    const server = this.ipc.server;
    server.on('connect', (socket) => this.onConnect(socket));
    server.on('socket.disconnected', (socket) => this.onDisconnect(socket));
    server.on(ENVELOPE_REQUEST, (data, socket) => this.onRequest(data, socket));

    await new Promise<void>((resolve, reject) => {
      let started = false;
      server.on('start', () => {
        started = true;
        resolve();
      });
      server.on('error', (error) => {
        if (!started) reject(error);
        else this.options.log.debug({ err: { message: error.message, code: error.code } }, 'connection error');
      });
      const previousUmask = process.umask(0o177); // the socket file is born 0600
      try {
        server.start(); // a throw here rejects this promise (it is the executor's)
      } finally {
        process.umask(previousUmask);
      }
    });
    if (process.platform !== 'win32') {
      fs.chmodSync(socketPath, 0o600);
      this.socketIno = fs.statSync(socketPath).ino;
    }
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  /** Sends an event to every connection subscribed to it. */
  publish(event: BrokerEvent): void {
    for (const connection of this.connections.values()) {
      if (connection.closing || !connection.subscribed?.has(event.event)) continue;
      this.send(connection, ENVELOPE_EVENT, event);
    }
  }

  /**
   * Stops accepting, lets in-flight requests finish (up to `graceMs`), closes every connection and
   * removes the socket file.
   */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.sweepTimer);
    const netServer = this.ipc.server?.server as NetServer | false | undefined;
    if (netServer) netServer.close();
    if (this.inFlightTotal > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    for (const connection of this.connections.values()) connection.abort.abort();
    this.ipc.server?.stop();
    this.removeSocketFile();
  }

  private removeSocketFile(): void {
    if (process.platform === 'win32' || this.socketIno === undefined) return;
    try {
      // Only our own socket: a successor daemon may already listen on a new one at this path.
      if (fs.lstatSync(this.options.socketPath).ino === this.socketIno) fs.unlinkSync(this.options.socketPath);
    } catch {
      // already gone
    }
  }

  private onConnect(socket: Socket): void {
    const id = this.nextConnectionId++;
    const abort = new AbortController();
    const connection: ClientConnection = {
      id,
      socket,
      abort,
      connectedAt: Date.now(),
      queued: 0,
      flushedBytes: 0,
      flushedAt: 0,
      paused: false,
      backlogged: false,
      partialReads: 0,
      damped: false,
      context: { connectionId: id, clientName: undefined, signal: abort.signal },
      clientName: undefined,
      helloDone: false,
      inFlight: 0,
      subscribed: undefined,
      closing: false,
    };
    socket.on('drain', () => this.onDrain(connection));
    // After node-ipc's own 'data' listener (registered before 'connect'), so its partial frame is current.
    socket.on('data', (chunk: string) => this.onRead(connection, chunk));
    this.options.log.debug({ connection: connection.id }, 'client connected');
    if (this.connections.size >= this.maxConnections && !this.makeRoom()) {
      this.options.log.warn({ connection: id, max: this.maxConnections }, 'connection refused: every connection is busy');
      connection.closing = true;
      this.send(connection, ENVELOPE_RESPONSE, {
        id: null,
        error: new BrokerError('SERVER_BUSY', `the daemon has ${this.maxConnections} connections open and none is idle; try again later`).toWire(),
      });
      abort.abort();
      closeAfterAnswer(socket);
      return;
    }
    this.connections.set(socket, connection);
    this.awaitingHello.add(connection);
  }

  /**
   * At the connection cap, closes the least recently active idle connection (no request in flight, nothing
   * queued) to let a newcomer in; a connection that never sent anything counts as active when it connected.
   * `connections` is kept in order of activity (a request moves its connection to the end), so the first
   * idle one is the victim. Returns false when every connection is busy.
   */
  private makeRoom(): boolean {
    let victim: ClientConnection | undefined;
    for (const connection of this.connections.values()) {
      if (connection.inFlight > 0 || connection.queued > 0 || connection.socket.writableLength > 0) continue;
      victim = connection;
      break;
    }
    if (!victim) return false;
    this.options.log.debug(
      { connection: victim.id, client: victim.clientName, max: this.maxConnections },
      'closing the least recently active idle connection to make room',
    );
    this.retire(
      victim,
      new BrokerError(
        'SERVER_BUSY',
        `the daemon closed this idle connection to make room for a new one (at most ${this.maxConnections} connections); reconnect when needed`,
      ),
    );
    return true;
  }

  /**
   * Forgets a connection and closes it: with `error`, answered first (id null) and closed gracefully;
   * without, destroyed at once (its queue is stalled: nothing more can reach it).
   */
  private retire(connection: ClientConnection, error?: BrokerError): void {
    if (error) this.send(connection, ENVELOPE_RESPONSE, { id: null, error: error.toWire() });
    this.forget(connection);
    if (error) closeAfterAnswer(connection.socket);
    else connection.socket.destroy();
  }

  private forget(connection: ClientConnection): void {
    if (this.connections.get(connection.socket) !== connection) return;
    this.connections.delete(connection.socket);
    this.awaitingHello.delete(connection);
    this.fair.forget(connection);
    this.account(connection, 0);
    connection.closing = true;
    connection.abort.abort();
  }

  private onDisconnect(socket: Socket): void {
    const connection = this.connections.get(socket);
    if (!connection) return;
    this.forget(connection);
    this.options.log.debug({ connection: connection.id, client: connection.clientName }, 'client disconnected');
  }

  /** Updates a connection's share of the global queued-bytes total (and its backpressure). */
  private account(connection: ClientConnection, queued: number): void {
    if (queued === connection.queued || (connection.closing && queued > 0)) return;
    this.queuedTotal += queued - connection.queued;
    if (connection.queued === 0) {
      connection.flushedBytes = connection.socket.bytesWritten - queued;
      connection.flushedAt = Date.now();
      this.queuedConnections.add(connection);
    }
    connection.queued = queued;
    if (queued === 0) {
      this.queuedConnections.delete(connection);
      if (connection.paused) {
        connection.paused = false;
        this.updateReading(connection);
        this.fair.wake(connection);
      }
      return;
    }
    if (queued >= READ_PAUSE_QUEUED_BYTES && !connection.paused && !connection.closing) {
      connection.paused = true;
      this.updateReading(connection);
    }
    if (this.queuedTotal > this.maxQueuedBytesTotal) this.enforceQueuedTotal();
  }

  /** Counts small reads that leave a partial frame; at DRIP_READS_BEFORE_DAMPING in a row, damps the connection. */
  private onRead(connection: ClientConnection, chunk: string): void {
    const partial = (connection.socket as Socket & { ipcBuffer?: string }).ipcBuffer;
    if (chunk.length >= DRIP_READ_BYTES || !partial) {
      connection.partialReads = 0;
      return;
    }
    if (++connection.partialReads < DRIP_READS_BEFORE_DAMPING || connection.closing) return;
    connection.partialReads = 0;
    connection.damped = true;
    this.updateReading(connection);
    setTimeout(() => {
      connection.damped = false;
      this.updateReading(connection);
    }, DRIP_DAMPING_MS).unref();
  }

  /** Reads while neither backpressure, a backlog nor drip damping holds the connection. */
  private updateReading(connection: ClientConnection): void {
    if (connection.paused || connection.backlogged || connection.damped) connection.socket.pause();
    else if (!connection.closing) connection.socket.resume();
  }

  private onDrain(connection: ClientConnection): void {
    if (this.connections.get(connection.socket) === connection) this.account(connection, connection.socket.writableLength);
  }

  /** Over the global budget: refresh every queue's size, then cut the biggest until within it. */
  private enforceQueuedTotal(): void {
    let total = 0;
    for (const connection of this.queuedConnections) {
      const queued = connection.socket.writableLength;
      if (queued === 0) {
        this.account(connection, 0);
        continue;
      }
      total += queued;
      connection.queued = queued;
    }
    this.queuedTotal = total;
    while (this.queuedTotal > this.maxQueuedBytesTotal) {
      let biggest: ClientConnection | undefined;
      for (const connection of this.queuedConnections) if (!biggest || connection.queued > biggest.queued) biggest = connection;
      if (!biggest) break;
      this.options.log.warn(
        { connection: biggest.id, client: biggest.clientName, queuedBytes: biggest.queued, totalBytes: this.queuedTotal, max: this.maxQueuedBytesTotal },
        'closing the connection with the most unread answers: the daemon-wide budget is exceeded',
      );
      this.retire(biggest);
    }
  }

  /** Closes connections past their hello deadline, and those whose queued answers stopped moving. */
  private sweep(): void {
    const now = Date.now();
    for (const connection of this.awaitingHello) {
      if (now - connection.connectedAt < this.helloTimeoutMs) break; // oldest first
      this.options.log.debug({ connection: connection.id }, 'no hello in time; closing the connection');
      this.retire(
        connection,
        new BrokerError('BAD_REQUEST', `method: no "hello" within ${this.helloTimeoutMs} ms of connecting; closing the connection`, { field: 'method' }),
      );
    }
    for (const connection of this.queuedConnections) {
      const { socket } = connection;
      const queued = socket.writableLength;
      if (queued === 0) {
        this.account(connection, 0);
        continue;
      }
      const flushed = socket.bytesWritten - queued;
      if (flushed !== connection.flushedBytes) {
        connection.flushedBytes = flushed;
        connection.flushedAt = now;
      } else if (now - connection.flushedAt >= this.writeStallTimeoutMs) {
        this.options.log.warn(
          { connection: connection.id, client: connection.clientName, queuedBytes: queued },
          'closing a connection that reads none of its answers',
        );
        this.retire(connection);
      }
    }
  }

  private onRequest(data: unknown, socket: Socket): void {
    const connection = this.connections.get(socket);
    if (!connection || connection.closing) return;
    this.fair.submit(connection, data);
  }

  /** One request, in its turn (see FairShare). */
  private handle(connection: ClientConnection, data: unknown): void {
    const { socket } = connection;
    if (connection.closing) return;
    // Most recently active last: the connection cap closes idle connections from the front.
    this.connections.delete(socket);
    this.connections.set(socket, connection);

    if (isRejectedFrame(data)) {
      // A framing error: answer once, then close this connection only.
      this.options.log.debug({ connection: connection.id }, 'rejected a malformed frame');
      this.sendError(connection, null, new BrokerError('BAD_REQUEST', `${data[REJECTED_FRAME]}; closing the connection`));
      connection.closing = true;
      closeAfterAnswer(socket);
      return;
    }

    let request: Request;
    try {
      request = parseRequest(data);
    } catch (error) {
      this.sendError(connection, salvageRequestId(data), error);
      return;
    }
    if (this.stopping) {
      this.sendError(connection, request.id, new BrokerError('SHUTTING_DOWN', 'the daemon is shutting down'));
      return;
    }
    if (request.method !== 'hello' && !connection.helloDone) {
      this.sendError(
        connection,
        request.id,
        new BrokerError('BAD_REQUEST', 'method: send "hello" first to agree on the protocol version', { field: 'method' }),
      );
      return;
    }
    if (connection.inFlight >= MAX_IN_FLIGHT_PER_CONNECTION) {
      this.sendError(
        connection,
        request.id,
        new BrokerError('TOO_MANY_REQUESTS', `at most ${MAX_IN_FLIGHT_PER_CONNECTION} requests may be in flight per connection`),
      );
      return;
    }
    this.dispatch(connection, request);
  }

  private dispatch(connection: ClientConnection, request: Request): void {
    let outcome: unknown;
    try {
      outcome = this.invoke(connection, request);
    } catch (error) {
      this.sendError(connection, request.id, error);
      return;
    }
    if (!(outcome instanceof Promise)) {
      this.send(connection, ENVELOPE_RESPONSE, { id: request.id, result: outcome ?? {} });
      return;
    }
    connection.inFlight++;
    this.inFlightTotal++;
    // One then() with both callbacks (no finally(): one promise and one microtask less per request).
    outcome.then(
      (result: unknown) => {
        this.send(connection, ENVELOPE_RESPONSE, { id: request.id, result: result ?? {} });
        this.settled(connection);
      },
      (error: unknown) => {
        this.sendError(connection, request.id, error);
        this.settled(connection);
      },
    );
  }

  private settled(connection: ClientConnection): void {
    connection.inFlight--;
    this.inFlightTotal--;
    if (this.inFlightTotal === 0) this.drained?.();
  }

  private invoke(connection: ClientConnection, request: Request): unknown {
    switch (request.method) {
      case 'hello':
        return this.hello(connection, request.params);
      case 'subscribe': {
        const events = request.params.events ?? EVENT_NAMES;
        connection.subscribed = new Set(events);
        this.options.log.debug({ connection: connection.id, events }, 'subscribed');
        return { events: [...connection.subscribed] };
      }
      case 'unsubscribe':
        connection.subscribed = undefined;
        return {};
      default: {
        const handler = this.options.handlers[request.method];
        return handler(request.params as never, connection.context);
      }
    }
  }

  private hello(connection: ClientConnection, params: ParamsOf<'hello'>): HelloResult {
    if (!SUPPORTED_PROTOCOL_VERSIONS.includes(params.protocolVersion)) {
      throw new BrokerError(
        'UNSUPPORTED_PROTOCOL',
        `this daemon speaks protocol version ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')}; the client asked for ${params.protocolVersion}` +
          ' (upgrade whichever side is older)',
        { field: 'params.protocolVersion' },
      );
    }
    connection.helloDone = true;
    this.awaitingHello.delete(connection);
    connection.clientName = params.client;
    connection.context = { connectionId: connection.id, clientName: params.client, signal: connection.abort.signal };
    this.options.log.debug({ connection: connection.id, client: params.client }, 'hello');
    return { protocolVersion: PROTOCOL_VERSION, daemonVersion: this.options.daemonVersion, methods: METHOD_NAMES };
  }

  private sendError(connection: ClientConnection, id: RequestId | null, error: unknown): void {
    let wire: BrokerError;
    if (error instanceof BrokerError) wire = error;
    else {
      this.options.log.error({ err: error }, 'unexpected error while answering a request');
      wire = new BrokerError('INTERNAL', 'internal error in the daemon (see its log)');
    }
    this.send(connection, ENVELOPE_RESPONSE, { id, error: wire.toWire() });
  }

  private send(connection: ClientConnection, type: string, data: unknown): void {
    // After end() (a framing error), a late answer must not be written: a write after end destroys the
    // socket at once, which can drop the error answer still queued ahead of it.
    if (connection.socket.destroyed || connection.socket.writableEnded) return;
    try {
      this.ipc.server.emit(connection.socket, type, data);
      const queued = connection.socket.writableLength;
      if (queued !== connection.queued) this.account(connection, queued);
    } catch (error) {
      this.options.log.warn({ err: { message: (error as Error).message }, connection: connection.id }, 'could not send');
      // Every request gets exactly one answer: a result that cannot be sent (larger than the frame
      // limit, e.g. `status` with a thousand profiles) becomes an error answer, not a silent timeout.
      const answer = data as { id?: RequestId | null; result?: unknown };
      if (type === ENVELOPE_RESPONSE && answer.result !== undefined && answer.id !== undefined) {
        const failure = new BrokerError(
          'INTERNAL',
          `the answer to this request could not be sent: ${(error as Error).message} (at most ${MAX_MESSAGE_BYTES} bytes)`,
        );
        this.send(connection, ENVELOPE_RESPONSE, { id: answer.id, error: failure.toWire() });
      }
    }
  }
}

/** How long a connection closed for a framing error may stay half-open before it is destroyed. */
const HALF_CLOSE_GRACE_MS = 1_000;

/**
 * Ends our side after the error answer (so the client reads it, then EOF), and destroys the socket if
 * the client has not closed its side within the grace period: end() alone closes only our half, and a
 * client that ignores the error could go on writing, and being parsed, forever. Destroying at once
 * instead would lose the answer whenever the client is still writing (its next write fails with EPIPE
 * and its unread data is dropped).
 */
function closeAfterAnswer(socket: Socket): void {
  socket.end();
  const timer = setTimeout(() => socket.destroy(), HALF_CLOSE_GRACE_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/** MAX_CONNECTIONS, or fewer when the open-files limit (Linux: /proc/self/limits) cannot hold them. */
function defaultMaxConnections(): number {
  let limits: string;
  try {
    limits = fs.readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return MAX_CONNECTIONS;
  }
  const soft = /^Max open files\s+(\d+)/m.exec(limits)?.[1];
  if (soft === undefined) return MAX_CONNECTIONS;
  // Node's own hard limit sits above ours (maxConnections / 8 more); keep that and RESERVED_FDS free.
  const fit = Math.floor(((Number(soft) - RESERVED_FDS) * 8) / 9);
  return Math.max(16, Math.min(MAX_CONNECTIONS, fit));
}

function dirnameWithSlash(socketPath: string): string {
  const index = socketPath.lastIndexOf('/');
  return index <= 0 ? '/' : socketPath.slice(0, index + 1);
}
