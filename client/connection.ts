/**
 * One socket to the daemon: framing, the `hello` handshake, request/response correlation, events.
 * BrokerClient (index.ts) owns reconnection; a Connection lives until its socket closes.
 */
import type { Stats } from 'node:fs';
import type { Socket } from 'node:net';
import path from 'node:path';
// Each proto module by name rather than the proto/index.js barrel: `tokenbroker token` starts a
// process per call, and every module loaded (the barrel, validate.js) is start-up time.
import { BrokerError, isErrorCode, type WireError } from '../proto/errors.js';
import { FrameDecoder, encodeFrame, type FramingError } from '../proto/framing.js';
import { EVENT_NAMES, type BrokerEvent, type HelloResult } from '../proto/messages.js';
import { isPlainObject } from '../proto/validate.js';
import { ENVELOPE_EVENT, ENVELOPE_REQUEST, ENVELOPE_RESPONSE, PROTOCOL_VERSION } from '../proto/version.js';
import { abortError } from './abort.js';

// fs and net through process.getBuiltinModule, not `import`: an ESM import of a builtin builds a facade
// of all its exports, which pulls in their lazy parts (fs: fs/promises, readline, watchers, …; net:
// BlockList, SocketAddress). `tokenbroker token` is a process per call, and that is start-up time.
const fs = process.getBuiltinModule('node:fs');
const net = process.getBuiltinModule('node:net');

/** A monotonic clock in ms (the global `performance` would load perf_hooks at start-up). */
function monotonicMs(): number {
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1000 + nanoseconds / 1e6;
}

interface Pending {
  readonly method: string;
  readonly timeoutMs: number;
  /** monotonicMs() after which the call fails with TIMEOUT. */
  readonly deadline: number;
  resolve(value: unknown): void;
  reject(error: BrokerError): void;
  readonly signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** Told once when the call settles, whatever the outcome. */
  readonly onSettled: (() => void) | undefined;
}

const eventNames: ReadonlySet<string> = new Set(EVENT_NAMES);

export interface ConnectionHandlers {
  onEvent(event: BrokerEvent): void;
  onClose(connection: Connection): void;
}

export class Connection {
  private readonly decoder = new FrameDecoder();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closedError: BrokerError | undefined;
  /**
   * One timer per connection for every call's timeout, armed for the earliest deadline. Calls made with
   * the same timeout have ever later deadlines, so a call costs no timer of its own. Unref'd: a pending
   * call keeps the process alive through its socket, and an idle connection must not.
   */
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  hello: HelloResult | undefined;

  private constructor(
    private readonly socket: Socket,
    readonly socketPath: string,
    private readonly handlers: ConnectionHandlers,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.receive(chunk));
    socket.on('error', () => {
      /* 'close' follows and rejects what is pending */
    });
    socket.on('close', () => this.closed());
  }

  /** Opens the socket and performs `hello`. Rejects with DAEMON_NOT_RUNNING when nothing listens. */
  static async open(socketPath: string, clientName: string, timeoutMs: number, handlers: ConnectionHandlers): Promise<Connection> {
    // Connect to the path that was checked, not to one a symlink could re-point in between.
    const checkedPath = verifySocketOwner(socketPath);
    const socket = await connectSocket(checkedPath, socketPath, timeoutMs);
    socket.setNoDelay(true);
    const connection = new Connection(socket, socketPath, handlers);
    connection.hello = (await connection.request('hello', { protocolVersion: PROTOCOL_VERSION, client: clientName }, timeoutMs)) as HelloResult;
    return connection;
  }

  get isClosed(): boolean {
    return this.closedError !== undefined;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Sends one request; resolves with its result or rejects with a BrokerError. `onSettled` is called
   * exactly once when the call is over, whatever the outcome (the client frees its slot with it).
   */
  request(method: string, params: unknown, timeoutMs: number, signal?: AbortSignal, onSettled?: () => void): Promise<unknown> {
    if (this.closedError) return settledEarly(this.closedError, onSettled);
    if (signal?.aborted) return settledEarly(abortError(signal), onSettled);
    let frame: string;
    try {
      frame = encodeFrame(ENVELOPE_REQUEST, { id: this.nextId, method, params });
    } catch (error) {
      return settledEarly(new BrokerError('BAD_REQUEST', (error as Error).message), onSettled);
    }
    const id = this.nextId++;
    const deadline = monotonicMs() + timeoutMs;
    return new Promise((resolve, reject) => {
      const pending: Pending = { method, timeoutMs, deadline, resolve, reject, signal, onAbort: undefined, onSettled };
      if (signal) {
        pending.onAbort = () => this.settle(id, pending)?.reject(abortError(signal));
        signal.addEventListener('abort', pending.onAbort, { once: true });
      }
      this.pending.set(id, pending);
      if (deadline < this.timerAt) this.armTimer(deadline);
      this.socket.write(frame);
    });
  }

  /** Removes a pending call (once); returns it, or undefined when it had settled already. */
  private settle(id: number, pending: Pending): Pending | undefined {
    if (this.pending.get(id) !== pending) return undefined;
    this.pending.delete(id);
    if (pending.onAbort) pending.signal!.removeEventListener('abort', pending.onAbort);
    pending.onSettled?.();
    return pending;
  }

  private armTimer(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.expire(), Math.max(0, Math.ceil(at - monotonicMs())));
    this.timer.unref();
  }

  /** Fails every call past its deadline, and re-arms for the earliest remaining one. */
  private expire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = monotonicMs();
    let next = Infinity;
    for (const [id, pending] of this.pending) {
      if (pending.deadline <= now) {
        this.settle(id, pending);
        pending.reject(new BrokerError('TIMEOUT', `${pending.method} got no answer within ${pending.timeoutMs} ms`));
      } else if (pending.deadline < next) next = pending.deadline;
    }
    if (next !== Infinity) this.armTimer(next);
  }

  close(): void {
    this.socket.destroy();
  }

  private receive(chunk: string): void {
    let envelopes;
    try {
      envelopes = this.decoder.push(chunk);
    } catch (error) {
      this.fail(new BrokerError('CONNECTION_LOST', `the daemon sent an unreadable frame: ${(error as FramingError).message}`));
      return;
    }
    for (const { type, data } of envelopes) {
      if (type === ENVELOPE_RESPONSE) this.response(data);
      else if (type === ENVELOPE_EVENT) this.event(data);
      // Unknown envelope types are ignored: a newer daemon may send more.
    }
  }

  private response(data: unknown): void {
    if (!isPlainObject(data) || typeof data['id'] !== 'number') {
      if (isPlainObject(data) && isPlainObject(data['error']) && data['id'] === null) {
        // An error the daemon could not correlate (our frame was unreadable): fail everything.
        this.fail(toBrokerError(data['error']));
      }
      return;
    }
    const id = data['id'];
    const pending = this.pending.get(id);
    if (!pending) return; // timed out or aborted already
    this.settle(id, pending);
    if (Object.hasOwn(data, 'error')) pending.reject(toBrokerError(data['error']));
    else pending.resolve(data['result']);
  }

  private event(data: unknown): void {
    if (!isPlainObject(data) || typeof data['event'] !== 'string' || !eventNames.has(data['event'])) return;
    this.handlers.onEvent({ event: data['event'], data: data['data'] } as BrokerEvent);
  }

  private fail(error: BrokerError): void {
    this.closedError ??= error;
    this.socket.destroy();
  }

  private closed(): void {
    this.closedError ??= new BrokerError('CONNECTION_LOST', 'the connection to the tokenbroker daemon closed');
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
    for (const [id, pending] of [...this.pending]) {
      this.settle(id, pending);
      pending.reject(this.closedError);
    }
    this.handlers.onClose(this);
  }
}

function settledEarly(error: BrokerError, onSettled: (() => void) | undefined): Promise<never> {
  onSettled?.();
  return Promise.reject(error);
}

function toBrokerError(value: unknown): BrokerError {
  if (isPlainObject(value) && isErrorCode(value['code']) && typeof value['message'] === 'string') {
    return BrokerError.fromWire(value as unknown as WireError);
  }
  return new BrokerError('INTERNAL', 'the daemon answered with a malformed error');
}

/** Waits between connect attempts refused with EAGAIN: doubling from the first to the last. */
const CONNECT_RETRY_FIRST_MS = 5;
const CONNECT_RETRY_MAX_MS = 100;

/**
 * Connects within `timeoutMs`. A Unix socket whose listen backlog is full refuses `connect(2)` with EAGAIN
 * (Linux): the daemon is there but busy accepting (e.g. while another process floods it with connections),
 * so the attempt is repeated with a short backoff instead of reporting DAEMON_NOT_RUNNING.
 */
async function connectSocket(target: string, socketPath: string, timeoutMs: number): Promise<Socket> {
  const deadline = monotonicMs() + timeoutMs;
  for (let wait = CONNECT_RETRY_FIRST_MS; ; wait = Math.min(wait * 2, CONNECT_RETRY_MAX_MS)) {
    try {
      return await connectOnce(target, socketPath, Math.max(1, deadline - monotonicMs()));
    } catch (error) {
      const busy = error instanceof BrokerError && (error.cause as NodeJS.ErrnoException | undefined)?.code === 'EAGAIN';
      if (!busy || monotonicMs() + wait >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

function connectOnce(target: string, socketPath: string, timeoutMs: number): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const s = net.createConnection({ path: target });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new BrokerError('TIMEOUT', `connecting to ${socketPath} took longer than ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(connectError(socketPath, error));
    });
  });
}

function connectError(socketPath: string, error: NodeJS.ErrnoException): BrokerError {
  if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED' || error.code === 'ENOTSOCK') {
    return new BrokerError(
      'DAEMON_NOT_RUNNING',
      `no tokenbroker daemon is listening on ${socketPath}; start it with "tokenbroker daemon" ` + `(or install the service: "tokenbroker service install")`,
      { cause: error },
    );
  }
  if (error.code === 'EACCES' || error.code === 'EPERM') {
    return new BrokerError('SOCKET_UNTRUSTED', `permission denied on ${socketPath}: it belongs to another user`, {
      cause: error,
    });
  }
  return new BrokerError('DAEMON_NOT_RUNNING', `cannot connect to ${socketPath}: ${error.message}`, { cause: error });
}

/**
 * The socket must belong to us: a socket in a shared directory could be another user's impostor
 * collecting tokens. (Named pipes on Windows are protected by their ACL instead.)
 *
 * Symlinks are resolved first and the *resolved* path is returned for connecting: checking through a
 * symlink and then connecting through it would let whoever controls the link re-point it in between
 * (a check-then-connect race). The socket's own directory must be ours and writable by nobody else
 * (the daemon only ever listens in such a directory), so nobody else can swap the socket either.
 */
function verifySocketOwner(socketPath: string): string {
  if (process.platform === 'win32' || typeof process.getuid !== 'function') return socketPath;
  let realPath: string;
  let stat: Stats;
  let dirStat: Stats;
  try {
    realPath = fs.realpathSync(socketPath);
    stat = fs.statSync(realPath);
    dirStat = fs.lstatSync(path.dirname(realPath));
  } catch (error) {
    throw connectError(socketPath, error as NodeJS.ErrnoException);
  }
  const uid = process.getuid();
  if (stat.uid !== uid) {
    throw new BrokerError('SOCKET_UNTRUSTED', `${socketPath} is owned by uid ${stat.uid}, not by you (uid ${uid}); refusing to connect`);
  }
  if (dirStat.uid !== uid || (dirStat.mode & 0o022) !== 0) {
    const mode = (dirStat.mode & 0o777).toString(8).padStart(3, '0');
    throw new BrokerError(
      'SOCKET_UNTRUSTED',
      `the directory of ${realPath} (owner uid ${dirStat.uid}, mode ${mode}) could let another user replace the socket; refusing to connect`,
    );
  }
  return realPath;
}
