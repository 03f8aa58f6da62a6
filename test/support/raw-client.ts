/**
 * A bare socket client that speaks the wire format by hand, for tests of what the daemon does with
 * well-formed and malformed frames.
 */
import net from 'node:net';

export interface RawClient {
  readonly socket: net.Socket;
  write(text: string): void;
  /** Sends one request envelope. */
  request(id: unknown, method: string, params?: unknown): void;
  /** Resolves with the next decoded frame (JSON-parsed). */
  next(timeoutMs?: number): Promise<{ type: string; data: Record<string, unknown> }>;
  /** Resolves when the daemon closed the connection. */
  readonly closed: Promise<void>;
  close(): void;
}

export async function rawConnect(socketPath: string, options: { hello?: boolean } = {}): Promise<RawClient> {
  const socket = net.createConnection({ path: socketPath });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.setEncoding('utf8');
  let buffer = '';
  const frames: Array<{ type: string; data: Record<string, unknown> }> = [];
  const waiters: Array<() => void> = [];
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf('\f')) !== -1) {
      frames.push(JSON.parse(buffer.slice(0, end)) as { type: string; data: Record<string, unknown> });
      buffer = buffer.slice(end + 1);
    }
    waiters.splice(0).forEach((wake) => wake());
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.once('close', () => waiters.splice(0).forEach((wake) => wake()));
  const client: RawClient = {
    socket,
    write: (text) => socket.write(text),
    request: (id, method, params) => socket.write(JSON.stringify({ type: 'request', data: { id, method, params } }) + '\f'),
    next: async (timeoutMs = 5_000) => {
      const deadline = Date.now() + timeoutMs;
      while (frames.length === 0) {
        if (socket.destroyed && frames.length === 0) throw new Error('connection closed');
        if (Date.now() > deadline) throw new Error('no frame in time');
        await Promise.race([new Promise<void>((resolve) => waiters.push(resolve)), new Promise((r) => setTimeout(r, 50))]);
      }
      return frames.shift()!;
    },
    closed,
    close: () => socket.destroy(),
  };
  if (options.hello ?? true) {
    client.request(0, 'hello', { protocolVersion: 1, client: 'raw-test' });
    const answer = await client.next();
    if (!('result' in answer.data)) throw new Error(`hello failed: ${JSON.stringify(answer.data)}`);
  }
  return client;
}
