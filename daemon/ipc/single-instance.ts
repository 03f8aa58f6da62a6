/**
 * One daemon per socket. Before listening we look at what is at the socket path: nothing (go), a live
 * daemon (refuse, naming its pid), or a socket nobody answers on — left by a crashed daemon (replace it).
 */
import fs from 'node:fs';
import net from 'node:net';
import { BrokerError, ENVELOPE_REQUEST, ENVELOPE_RESPONSE, FrameDecoder, PROTOCOL_VERSION, encodeFrame, isPlainObject } from '../../proto/index.js';

/** Another daemon answers on the socket (code ALREADY_RUNNING). */
export class AlreadyRunningError extends BrokerError {
  constructor(message: string) {
    super('ALREADY_RUNNING', message);
  }
}

export type SocketProbe = { readonly kind: 'free' } | { readonly kind: 'stale' } | { readonly kind: 'live'; readonly pid?: number };

/** Looks at the socket path without changing anything. */
export async function probeSocket(socketPath: string, timeoutMs = 1_000): Promise<SocketProbe> {
  if (process.platform !== 'win32') {
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(socketPath);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'free' };
      throw error;
    }
    if (!stat.isSocket()) {
      throw new Error(`${socketPath} exists and is not a socket; refusing to replace it (remove it yourself if it is stale)`);
    }
  }
  return new Promise((resolve) => {
    const socket = net.createConnection({ path: socketPath });
    const decoder = new FrameDecoder();
    let connected = false;
    const done = (probe: SocketProbe) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(probe);
    };
    // A daemon that accepts but does not answer in time is still alive: never steal its socket.
    const timer = setTimeout(() => done(connected ? { kind: 'live' } : { kind: 'stale' }), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      connected = true;
      socket.write(encodeFrame(ENVELOPE_REQUEST, { id: 1, method: 'hello', params: { protocolVersion: PROTOCOL_VERSION, client: 'tokenbroker-probe' } }));
      socket.write(encodeFrame(ENVELOPE_REQUEST, { id: 2, method: 'status', params: {} }));
    });
    socket.on('data', (chunk: string) => {
      try {
        for (const { type, data } of decoder.push(chunk)) {
          if (type !== ENVELOPE_RESPONSE || !isPlainObject(data) || data['id'] !== 2) continue;
          const result = data['result'];
          const pid = isPlainObject(result) && typeof result['pid'] === 'number' ? result['pid'] : undefined;
          done(pid === undefined ? { kind: 'live' } : { kind: 'live', pid });
        }
      } catch {
        done({ kind: 'live' });
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (connected) done({ kind: 'live' });
      else if (error.code === 'ECONNREFUSED' || error.code === 'ENOENT') done({ kind: 'stale' });
      else done({ kind: 'live' }); // EACCES and the like: do not touch it
    });
  });
}

/**
 * Makes the socket path ours to listen on: throws AlreadyRunningError when a daemon answers there,
 * removes a stale socket. Returns true when a stale socket was replaced.
 */
export async function claimSocket(socketPath: string): Promise<boolean> {
  const probe = await probeSocket(socketPath);
  if (probe.kind === 'live') {
    const who = probe.pid === undefined ? 'another daemon' : `another daemon (pid ${probe.pid})`;
    throw new AlreadyRunningError(`${who} is already listening on ${socketPath}; stop it first or use another --socket`);
  }
  if (probe.kind === 'stale' && process.platform !== 'win32') {
    fs.unlinkSync(socketPath);
    return true;
  }
  return false;
}
