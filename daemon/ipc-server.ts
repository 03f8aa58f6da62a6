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
} from '../proto/index.js';
import { BrokerParser, REJECTED_FRAME, isRejectedFrame } from './ipc-parser.js';
import type { Logger } from './log.js';

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
  /** Connections beyond this are refused by the kernel's accept path. @default 8192 */
  readonly maxConnections?: number;
}

/** Allowed at most this many open connections by default (many apps, each with a few). */
const DEFAULT_MAX_CONNECTIONS = 8192;

export class IpcServer {
  private readonly ipc = new IPCModule();
  private readonly connections = new Map<Socket, ClientConnection>();
  private nextConnectionId = 1;
  private inFlightTotal = 0;
  private stopping = false;
  private drained: (() => void) | undefined;
  private socketIno: number | undefined;

  constructor(private readonly options: IpcServerOptions) {}

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
      maxPendingBytes: 4 * 1024 * 1024,
      messageTimeout: INCOMPLETE_FRAME_TIMEOUT_MS,
      unlink: false, // single-instance logic is ours: never remove a live daemon's socket
      secureSocketRoot: true,
      socketRoot: ipcSocketRoot,
      readableAll: false,
      writableAll: false,
      maxConnections: this.options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
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
        server.start();
      } catch (error) {
        reject(error);
      } finally {
        process.umask(previousUmask);
      }
    });
    if (process.platform !== 'win32') {
      fs.chmodSync(socketPath, 0o600);
      this.socketIno = fs.statSync(socketPath).ino;
    }
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
      context: { connectionId: id, clientName: undefined, signal: abort.signal },
      clientName: undefined,
      helloDone: false,
      inFlight: 0,
      subscribed: undefined,
      closing: false,
    };
    this.connections.set(socket, connection);
    this.options.log.debug({ connection: connection.id }, 'client connected');
  }

  private onDisconnect(socket: Socket): void {
    const connection = this.connections.get(socket);
    if (!connection) return;
    this.connections.delete(socket);
    connection.closing = true;
    connection.abort.abort();
    this.options.log.debug({ connection: connection.id, client: connection.clientName }, 'client disconnected');
  }

  private onRequest(data: unknown, socket: Socket): void {
    const connection = this.connections.get(socket);
    if (!connection || connection.closing) return;

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
        const handler = this.options.handlers[request.method] as Handler<typeof request.method>;
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
    } catch (error) {
      this.options.log.warn({ err: { message: (error as Error).message }, connection: connection.id }, 'could not send');
      // Every request gets exactly one answer: a result that cannot be sent (larger than the frame
      // limit, e.g. `status` with a thousand profiles) becomes an error answer, not a silent timeout.
      const answer = data as { id?: RequestId | null; result?: unknown };
      if (type === ENVELOPE_RESPONSE && answer.result !== undefined && answer.id !== undefined) {
        const failure = new BrokerError('INTERNAL', `the answer to this request could not be sent: ${(error as Error).message} (at most ${MAX_MESSAGE_BYTES} bytes)`);
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

function dirnameWithSlash(socketPath: string): string {
  const index = socketPath.lastIndexOf('/');
  return index <= 0 ? '/' : socketPath.slice(0, index + 1);
}
