/**
 * One socket to the daemon: framing, the `hello` handshake, request/response correlation, events.
 * BrokerClient (index.ts) owns reconnection; a Connection lives until its socket closes.
 */
import fs from 'node:fs';
import net from 'node:net';
import {
  BrokerError,
  ENVELOPE_EVENT,
  ENVELOPE_REQUEST,
  ENVELOPE_RESPONSE,
  EVENT_NAMES,
  FrameDecoder,
  FramingError,
  PROTOCOL_VERSION,
  encodeFrame,
  isErrorCode,
  isPlainObject,
  type BrokerEvent,
  type HelloResult,
  type WireError,
} from '../proto/index.js';

interface Pending {
  resolve(value: unknown): void;
  reject(error: BrokerError): void;
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
  hello: HelloResult | undefined;

  private constructor(
    private readonly socket: net.Socket,
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
  static async open(
    socketPath: string,
    clientName: string,
    timeoutMs: number,
    handlers: ConnectionHandlers,
  ): Promise<Connection> {
    verifySocketOwner(socketPath);
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection({ path: socketPath });
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
    socket.setNoDelay(true);
    const connection = new Connection(socket, socketPath, handlers);
    connection.hello = (await connection.request(
      'hello',
      { protocolVersion: PROTOCOL_VERSION, client: clientName },
      timeoutMs,
    )) as HelloResult;
    return connection;
  }

  get isClosed(): boolean {
    return this.closedError !== undefined;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  request(method: string, params: unknown, timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.pending.delete(id);
      };
      const onAbort = () => {
        finish();
        reject(abortError(signal));
      };
      const timer = setTimeout(() => {
        finish();
        reject(new BrokerError('TIMEOUT', `${method} got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        resolve: (value) => {
          finish();
          resolve(value);
        },
        reject: (error) => {
          finish();
          reject(error);
        },
      });
      try {
        this.socket.write(encodeFrame(ENVELOPE_REQUEST, { id, method, params }));
      } catch (error) {
        this.pending.get(id)?.reject(new BrokerError('BAD_REQUEST', (error as Error).message));
      }
    });
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
    const pending = this.pending.get(data['id']);
    if (!pending) return; // timed out or aborted already
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
    for (const pending of [...this.pending.values()]) pending.reject(this.closedError);
    this.handlers.onClose(this);
  }
}

function toBrokerError(value: unknown): BrokerError {
  if (isPlainObject(value) && isErrorCode(value['code']) && typeof value['message'] === 'string') {
    return BrokerError.fromWire(value as unknown as WireError);
  }
  return new BrokerError('INTERNAL', 'the daemon answered with a malformed error');
}

function abortError(signal: AbortSignal | undefined): BrokerError {
  return new BrokerError('ABORTED', 'the call was aborted', { cause: signal?.reason });
}

function connectError(socketPath: string, error: NodeJS.ErrnoException): BrokerError {
  if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED' || error.code === 'ENOTSOCK') {
    return new BrokerError(
      'DAEMON_NOT_RUNNING',
      `no tokenbroker daemon is listening on ${socketPath}; start it with "tokenbroker daemon" ` +
        `(or install the service: "tokenbroker service install")`,
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
 */
function verifySocketOwner(socketPath: string): void {
  if (process.platform === 'win32' || typeof process.getuid !== 'function') return;
  let stat: fs.Stats;
  try {
    stat = fs.statSync(socketPath);
  } catch (error) {
    throw connectError(socketPath, error as NodeJS.ErrnoException);
  }
  const uid = process.getuid();
  if (stat.uid !== uid) {
    throw new BrokerError(
      'SOCKET_UNTRUSTED',
      `${socketPath} is owned by uid ${stat.uid}, not by you (uid ${uid}); refusing to connect`,
    );
  }
}
