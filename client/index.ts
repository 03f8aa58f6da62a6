/**
 * The library apps import to get tokens from the tokenbroker daemon.
 *
 * ```ts
 * import { connect } from 'tokenbroker/client';
 * const broker = await connect();
 * console.log(await broker.status());
 * await broker.close();
 * ```
 */
import {
  BrokerError,
  MAX_IN_FLIGHT_PER_CONNECTION,
  type BrokerEvent,
  type EventName,
  type MethodName,
  type ParamsOf,
  type ResultOf,
  type StatusResult,
} from '../proto/index.js';
import { Connection } from './connection.js';
import { resolveSocketPath } from './socket-path.js';

export { BrokerError } from '../proto/index.js';
export type * from '../proto/messages.js';
export type { ErrorCode, WireError } from '../proto/errors.js';
export { resolveSocketPath } from './socket-path.js';

export interface ConnectOptions {
  /** @default `$TOKENBROKER_SOCKET`, else the per-user default (see README) */
  readonly socketPath?: string;
  /** Default timeout of each call, in ms. @default 10000 */
  readonly timeoutMs?: number;
  /** Timeout of connecting and the `hello` handshake, in ms. @default 2000 */
  readonly connectTimeoutMs?: number;
  /** A short name the daemon logs, e.g. "my-editor/1.2". @default "tokenbroker-client" */
  readonly clientName?: string;
  /** Reconnect (and re-subscribe) after the daemon restarts. @default true */
  readonly reconnect?: boolean;
  /** Aborts the initial connect. */
  readonly signal?: AbortSignal;
}

export interface CallOptions {
  readonly signal?: AbortSignal;
  /** Overrides the client's default timeout for this call, in ms. */
  readonly timeoutMs?: number;
}

export interface SubscribeOptions extends CallOptions {
  /** Only these events; all when absent. */
  readonly events?: readonly EventName[];
}

export type EventHandler = (event: BrokerEvent) => void;

export interface Subscription {
  unsubscribe(): Promise<void>;
}

interface ResolvedOptions {
  readonly socketPath: string;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly clientName: string;
  readonly reconnect: boolean;
}

const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;

/** Connects to the daemon. Rejects with DAEMON_NOT_RUNNING when nothing listens. */
export async function connect(options: ConnectOptions = {}): Promise<BrokerClient> {
  const client = new BrokerClient(options);
  await client.ready(options.signal);
  return client;
}

export class BrokerClient {
  readonly options: ResolvedOptions;
  private connection: Connection | undefined;
  private connecting: Promise<Connection> | undefined;
  private readonly handlers = new Map<EventHandler, ReadonlySet<EventName> | undefined>();
  private readonly waiting: Array<() => void> = [];
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectDelay = RECONNECT_MIN_MS;
  private closed = false;

  constructor(options: ConnectOptions = {}) {
    this.options = {
      socketPath: options.socketPath ?? resolveSocketPath(),
      timeoutMs: options.timeoutMs ?? 10_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 2_000,
      clientName: options.clientName ?? 'tokenbroker-client',
      reconnect: options.reconnect ?? true,
    };
  }

  /** Resolves once connected (connecting if needed). */
  async ready(signal?: AbortSignal): Promise<void> {
    await withSignal(this.connectionFor(), signal);
  }

  /** Daemon version, uptime, clients and every profile's state. */
  status(options: CallOptions = {}): Promise<StatusResult> {
    return this.request('status', {}, options);
  }

  /**
   * Receives events (token refreshed, login required, logged in/out). The subscription survives
   * daemon restarts while `reconnect` is on.
   */
  async subscribe(handler: EventHandler, options: SubscribeOptions = {}): Promise<Subscription> {
    const filter = options.events ? new Set(options.events) : undefined;
    this.handlers.set(handler, filter);
    try {
      await this.request('subscribe', {}, options);
    } catch (error) {
      this.handlers.delete(handler);
      throw error;
    }
    return {
      unsubscribe: async () => {
        this.handlers.delete(handler);
        if (this.handlers.size === 0 && this.connection && !this.connection.isClosed) {
          await this.request('unsubscribe', {}, options);
        }
      },
    };
  }

  /** Sends one request and resolves with its result; rejects with a BrokerError carrying the wire code. */
  async request<M extends MethodName>(method: M, params: ParamsOf<M>, options: CallOptions = {}): Promise<ResultOf<M>> {
    if (this.closed) throw new BrokerError('CONNECTION_LOST', 'this client was closed');
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs;
    const deadline = Date.now() + timeoutMs;
    const connection = await withSignal(this.connectionFor(), options.signal);
    await this.slot(connection, options.signal);
    try {
      const remaining = Math.max(1, deadline - Date.now());
      return (await connection.request(method, params, remaining, options.signal)) as ResultOf<M>;
    } finally {
      this.waiting.shift()?.();
    }
  }

  /** Closes the connection; pending calls fail with CONNECTION_LOST. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.handlers.clear();
    this.connection?.close();
    this.connection = undefined;
  }

  /** Keeps at most MAX_IN_FLIGHT_PER_CONNECTION requests on the wire; the rest wait here in order. */
  private async slot(connection: Connection, signal: AbortSignal | undefined): Promise<void> {
    if (connection.inFlight < MAX_IN_FLIGHT_PER_CONNECTION && this.waiting.length === 0) return;
    await withSignal(new Promise<void>((resolve) => this.waiting.push(resolve)), signal);
  }

  private connectionFor(): Promise<Connection> {
    if (this.connection && !this.connection.isClosed) return Promise.resolve(this.connection);
    this.connecting ??= Connection.open(this.options.socketPath, this.options.clientName, this.options.connectTimeoutMs, {
      onEvent: (event) => this.dispatch(event),
      onClose: (connection) => this.onClose(connection),
    })
      .then(async (connection) => {
        this.connection = connection;
        this.reconnectDelay = RECONNECT_MIN_MS;
        if (this.closed) connection.close();
        else if (this.handlers.size > 0) {
          await connection.request('subscribe', {}, this.options.timeoutMs);
        }
        return connection;
      })
      .finally(() => {
        this.connecting = undefined;
      });
    return this.connecting;
  }

  private dispatch(event: BrokerEvent): void {
    for (const [handler, filter] of this.handlers) {
      if (filter && !filter.has(event.event)) continue;
      try {
        handler(event);
      } catch {
        // An app's handler must not break the connection for the others.
      }
    }
  }

  private onClose(connection: Connection): void {
    if (this.connection === connection) this.connection = undefined;
    // Let queued callers find out (they will reconnect or fail with DAEMON_NOT_RUNNING).
    for (const wake of this.waiting.splice(0)) wake();
    if (!this.closed && this.options.reconnect && this.handlers.size > 0) this.scheduleReconnect();
  }

  /** With subscribers, reconnect in the background with capped exponential backoff. */
  private scheduleReconnect(): void {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.connectionFor().catch(() => {
        this.reconnectDelay = Math.min(this.reconnectDelay * 2, RECONNECT_MAX_MS);
        if (!this.closed && this.handlers.size > 0) this.scheduleReconnect();
      });
    }, this.reconnectDelay);
    this.reconnectTimer.unref();
  }
}

function withSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(new BrokerError('ABORTED', 'the call was aborted', { cause: signal.reason }));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new BrokerError('ABORTED', 'the call was aborted', { cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
