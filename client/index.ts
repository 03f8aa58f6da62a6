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
// Each proto module by name, not the proto/index.js barrel (start-up time of `tokenbroker token`).
import { BrokerError } from '../proto/errors.js';
import type {
  BrokerEvent,
  CallbackResult,
  EventName,
  LoginCancelResult,
  LoginResult,
  LogoutResult,
  MethodName,
  ParamsOf,
  ResultOf,
  StatusResult,
  TokenGetParams,
  TokenKind,
  TokenResult,
} from '../proto/messages.js';
import { withSignal } from './abort.js';
import { Connection } from './connection.js';
import { Reconnector } from './reconnect.js';
import { SlotQueue } from './slot-queue.js';
import { resolveSocketPath } from './socket-path.js';

export { BrokerError } from '../proto/errors.js';
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

export interface TokenOptions extends CallOptions {
  /** @default the daemon's default profile */
  readonly profile?: string;
  /** Refresh first when less than this is left. @default the profile's setting (30 s) */
  readonly minValidSeconds?: number;
  /** An access token your API rejected with 401: get a newer one (see `fetch`). */
  readonly rejected?: string;
  /** Only these of the granted scopes (a narrower token, cached apart). SCOPE_NOT_GRANTED for one never granted. */
  readonly scopes?: readonly string[];
  /** The API(s) the token is for: RFC 8707 resource indicators (absolute URIs). */
  readonly resource?: string | readonly string[];
  /** "id": the session's ID token (in `accessToken`; the answer has `kind: "id"`). @default "access" */
  readonly kind?: TokenKind;
}

export interface LoginOptions extends CallOptions {
  readonly profile?: string;
  /** @default true */
  readonly openBrowser?: boolean;
  /** Sign in with a code on another device (RFC 8628), whatever the profile's flow. @default false */
  readonly device?: boolean;
  /** Called once the login is under way, with the URL to show if no browser came up (and the code, for a device sign-in). */
  readonly onPending?: (pending: LoginResult) => void;
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
  private readonly slots = new SlotQueue();
  private readonly reconnector = new Reconnector(
    () => this.connectionFor(),
    () => !this.closed && this.handlers.size > 0,
  );
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

  /**
   * Daemon version, uptime, clients and every profile's state (or only `profile`'s). The daemon answers
   * in pages (see proto/README.md); this follows them and returns every profile in one result.
   */
  async status(options: CallOptions & { readonly profile?: string } = {}): Promise<StatusResult> {
    if (options.profile !== undefined) return this.request('status', { profile: options.profile }, options);
    const first = await this.request('status', {}, options);
    const profiles = [...first.profiles];
    let next = first.nextOffset;
    while (next !== undefined) {
      const page = await this.request('status', { offset: next }, options);
      profiles.push(...page.profiles);
      // A page that does not move on would loop forever: stop (the result then says where it ended).
      if (page.nextOffset !== undefined && page.nextOffset <= next) break;
      next = page.nextOffset;
    }
    const { nextOffset: _first, ...rest } = first;
    return { ...rest, profiles, ...(next === undefined ? {} : { nextOffset: next }) };
  }

  /**
   * A valid access token. Answers from memory when the token has `minValidSeconds` left; otherwise the
   * daemon refreshes first (one refresh, however many apps ask). LOGIN_REQUIRED when nobody is signed in.
   */
  getToken(options: TokenOptions = {}): Promise<TokenResult> {
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs;
    // Built field by field (no spreads): this is every app's hot path.
    const params: { -readonly [K in keyof TokenGetParams]: TokenGetParams[K] } = {};
    if (options.profile !== undefined) params.profile = options.profile;
    if (options.minValidSeconds !== undefined) params.minValidSeconds = options.minValidSeconds;
    if (options.rejected !== undefined) params.rejected = options.rejected;
    if (options.scopes !== undefined) params.scopes = options.scopes;
    if (options.resource !== undefined) params.resource = typeof options.resource === 'string' ? [options.resource] : options.resource;
    if (options.kind !== undefined) params.kind = options.kind;
    // Let the daemon answer (IDP_UNAVAILABLE with retryAt) before our own timeout fires.
    params.waitMs = Math.max(0, Math.min(120_000, timeoutMs - 500));
    return this.request('token.get', params, options);
  }

  /**
   * `fetch` with the broker's token: sets `Authorization: Bearer`, and when the API answers 401, reports
   * that token (so the broker refreshes once for every app that saw it) and retries once.
   */
  async fetch(input: string | URL, init: RequestInit & TokenOptions = {}): Promise<Response> {
    const { profile, minValidSeconds, scopes, resource, kind, signal, timeoutMs, ...requestInit } = init;
    const tokenOptions: TokenOptions = {
      ...(profile === undefined ? {} : { profile }),
      ...(minValidSeconds === undefined ? {} : { minValidSeconds }),
      ...(scopes === undefined ? {} : { scopes }),
      ...(resource === undefined ? {} : { resource }),
      ...(kind === undefined ? {} : { kind }),
      ...(signal ? { signal } : {}),
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    };
    return this.withToken(async (token) => {
      const headers = new Headers(requestInit.headers);
      headers.set('authorization', `${token.tokenType} ${token.accessToken}`);
      const response = await fetch(input, { ...requestInit, headers, ...(signal ? { signal } : {}) });
      return { result: response, rejected: response.status === 401 };
    }, tokenOptions);
  }

  /**
   * Runs `use` with a token; when it reports the token rejected, gets a fresh one (the broker's retry
   * path) and runs it once more. The second result is returned whatever it says.
   */
  async withToken<T>(use: (token: TokenResult) => Promise<{ result: T; rejected: boolean }>, options: TokenOptions = {}): Promise<T> {
    const token = await this.getToken(options);
    const first = await use(token);
    if (!first.rejected) return first.result;
    const fresh = await this.getToken({ ...options, rejected: token.accessToken });
    return (await use(fresh)).result;
  }

  /** Signs in through the browser and resolves when done; joins a login already under way. */
  async login(options: LoginOptions = {}): Promise<LoginResult> {
    const params = {
      ...(options.profile === undefined ? {} : { profile: options.profile }),
      ...(options.openBrowser === undefined ? {} : { openBrowser: options.openBrowser }),
      ...(options.device ? { device: true } : {}),
    };
    const pending = await this.request('login', { ...params, wait: false }, options);
    options.onPending?.(pending);
    const waitMs = Math.max(1_000, (pending.timesOutAt ?? Date.now()) - Date.now() + 5_000);
    return this.request('login', { ...params, wait: true, openBrowser: false }, { ...options, timeoutMs: options.timeoutMs ?? waitMs });
  }

  /** Cancels the profile's pending login (every app waiting on it gets LOGIN_CANCELLED). */
  cancelLogin(options: CallOptions & { readonly profile?: string } = {}): Promise<LoginCancelResult> {
    return this.request('login.cancel', options.profile === undefined ? {} : { profile: options.profile }, options);
  }

  /** Signs out: keychain cleared, refresh token revoked, the provider's logout page opened. */
  logout(options: CallOptions & { readonly profile?: string; readonly openBrowser?: boolean } = {}): Promise<LogoutResult> {
    return this.request(
      'logout',
      {
        ...(options.profile === undefined ? {} : { profile: options.profile }),
        ...(options.openBrowser === undefined ? {} : { openBrowser: options.openBrowser }),
      },
      options,
    );
  }

  /** Hands a redirect URL (custom scheme or loopback) to the daemon. */
  callback(url: string, options: CallOptions = {}): Promise<CallbackResult> {
    return this.request('callback', { url }, options);
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
  request<M extends MethodName>(method: M, params: ParamsOf<M>, options: CallOptions = {}): Promise<ResultOf<M>> {
    if (this.closed) return Promise.reject(new BrokerError('CONNECTION_LOST', 'this client was closed'));
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs;
    // Fast path, the common case: connected, and a slot free with nobody queued ahead.
    const connection = this.connection;
    if (connection !== undefined && !connection.isClosed && this.slots.canSendNow(connection.inFlight)) {
      return connection.request(method, params, timeoutMs, options.signal, this.slots.release) as Promise<ResultOf<M>>;
    }
    return this.requestQueued(method, params, options, timeoutMs);
  }

  /** Connects first if needed, and waits in line for a slot. */
  private async requestQueued<M extends MethodName>(method: M, params: ParamsOf<M>, options: CallOptions, timeoutMs: number): Promise<ResultOf<M>> {
    const deadline = Date.now() + timeoutMs;
    const connection = await withSignal(this.connectionFor(), options.signal);
    const waited = this.slots.mustWait(connection.inFlight);
    if (waited) await this.slots.acquire(options.signal);
    const remaining = Math.max(1, deadline - Date.now());
    if (waited) this.slots.take(); // the reserved slot becomes this call's, in the same tick as it is sent
    return (await connection.request(method, params, remaining, options.signal, this.slots.release)) as ResultOf<M>;
  }

  /** Closes the connection; pending calls fail with CONNECTION_LOST. */
  close(): Promise<void> {
    this.closed = true;
    this.reconnector.stop();
    this.handlers.clear();
    this.connection?.close();
    this.connection = undefined;
    return Promise.resolve();
  }

  private connectionFor(): Promise<Connection> {
    if (this.connection && !this.connection.isClosed) return Promise.resolve(this.connection);
    this.connecting ??= Connection.open(this.options.socketPath, this.options.clientName, this.options.connectTimeoutMs, {
      onEvent: (event) => this.dispatch(event),
      onClose: (connection) => this.onClose(connection),
    })
      .then(async (connection) => {
        this.connection = connection;
        this.reconnector.reset();
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
    this.slots.wakeAll();
    if (!this.closed && this.options.reconnect && this.handlers.size > 0) this.reconnector.schedule();
  }
}
