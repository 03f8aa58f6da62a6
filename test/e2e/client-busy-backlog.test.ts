/**
 * A daemon too busy to accept (its listen backlog full, as while another process floods it with
 * connections) makes Linux refuse `connect(2)` on its Unix socket with EAGAIN. The client library must
 * wait and try again within its connect timeout, not report DAEMON_NOT_RUNNING.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from '../../client/index.js';
import { ROOT, tempDir } from '../support/daemon.js';

/** A stand-in daemon: listens with a backlog of 1, then blocks its event loop (accepts nothing) for `blockMs`, then answers hello. */
const STAND_IN = `
const [socketPath, blockMs, protoUrl] = process.argv.slice(1);
const { FrameDecoder, encodeFrame, ENVELOPE_REQUEST, ENVELOPE_RESPONSE, PROTOCOL_VERSION } = await import(protoUrl);
const net = await import('node:net');
const server = net.createServer((socket) => {
  socket.setEncoding('utf8');
  const decoder = new FrameDecoder();
  socket.on('error', () => {});
  socket.on('data', (chunk) => {
    for (const { type, data } of decoder.push(chunk)) {
      if (type === ENVELOPE_REQUEST && data.method === 'hello') socket.write(encodeFrame(ENVELOPE_RESPONSE, { id: data.id, result: { protocolVersion: PROTOCOL_VERSION, daemonVersion: 'stand-in', methods: [] } }));
    }
  });
});
server.listen({ path: socketPath, backlog: 1 }, () => {
  process.stdout.write('ready\\n');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(blockMs)); // busy: nothing is accepted
  process.stdout.write('accepting\\n');
});
`;

let child: ChildProcess | undefined;
afterEach(() => {
  child?.kill('SIGKILL');
  child = undefined;
});

describe('client (e2e): a daemon whose listen backlog is full', () => {
  it('is retried after EAGAIN within the connect timeout, then connects', async () => {
    const socketPath = path.join(tempDir(), 'broker.sock');
    const protoUrl = pathToFileURL(path.join(ROOT, 'dist/proto/index.js')).href;
    child = spawn(process.execPath, ['--input-type=module', '-e', STAND_IN, socketPath, '1500', protoUrl], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child!.stdout!.setEncoding('utf8').on('data', (text: string) => text.includes('ready') && resolve());
      child!.once('exit', (code) => reject(new Error(`the stand-in exited (${code})`)));
    });

    // Fill the backlog while the stand-in accepts nothing; count the connects refused with EAGAIN.
    const fillers: net.Socket[] = [];
    let refused = 0;
    for (let i = 0; i < 8; i++) {
      const socket = net.createConnection({ path: socketPath });
      socket.on('error', (error: NodeJS.ErrnoException) => void (error.code === 'EAGAIN' && refused++));
      fillers.push(socket);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(refused, 'the backlog was full (connects refused with EAGAIN)').toBeGreaterThan(0);

    const started = Date.now();
    const client = await connect({ socketPath, connectTimeoutMs: 10_000, reconnect: false, clientName: 'backlog-test' });
    try {
      expect(client).toBeDefined();
      expect(Date.now() - started).toBeGreaterThan(500); // it waited for the stand-in to accept again
    } finally {
      await client.close();
      for (const socket of fillers) socket.destroy();
    }
  });
});
