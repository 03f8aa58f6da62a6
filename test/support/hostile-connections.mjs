// A hostile local client, run as a child process so that the test process is not the bottleneck. It opens
// - `silent` connections that never send a byte,
// - `idle` connections that send `hello` and nothing more,
// - `parked` connections that send `hello`, then `requests` status requests as fast as the socket takes
//   them, then one more a second (so a closed connection is noticed), and never read an answer.
// A connection the daemon closes is opened again after `reconnectMs` (negative: never), so the pressure
// lasts. It prints one JSON line per second with its counters, and {"ready":true,…} once as many connections
// as asked have been opened (counting reopened ones).
//
// Usage: node hostile-connections.mjs <socketPath> silent=N idle=N parked=N [reconnectMs=1000] [requests=2000]
import net from 'node:net';

const [socketPath, ...settings] = process.argv.slice(2);
const options = { silent: 0, idle: 0, parked: 0, reconnectMs: 1000, requests: 2000 };
for (const setting of settings) {
  const [key, value] = setting.split('=');
  if (!(key in options) || !Number.isFinite(Number(value))) throw new Error(`unknown setting ${setting}`);
  options[key] = Number(value);
}
const SILENT = options.silent;
const IDLE = options.idle;
const PARKED = options.parked;
const RECONNECT_MS = options.reconnectMs;
const REQUESTS_PER_PARKED = options.requests;
const BATCH = 100;

const counters = {
  silentOpen: 0,
  idleOpen: 0,
  parkedOpen: 0,
  opened: 0,
  closedByDaemon: 0,
  /** error frames with id null read back from the first bytes of a closed connection, by code */
  codes: {},
  connectErrors: {},
  requestsWritten: 0,
};

const hello = JSON.stringify({ type: 'request', data: { id: 0, method: 'hello', params: { protocolVersion: 1, client: 'hostile' } } }) + '\f';
const oneStatus = JSON.stringify({ type: 'request', data: { id: 0, method: 'status' } }) + '\f';
const statusBatch = Array.from({ length: BATCH }, (_, i) => JSON.stringify({ type: 'request', data: { id: i + 1, method: 'status' } }) + '\f').join('');

function open(kind) {
  return new Promise((resolve) => {
    const socket = net.createConnection({ path: socketPath });
    let connected = false;
    socket.once('connect', () => {
      connected = true;
      counters.opened++;
      counters[`${kind}Open`]++;
      resolve(true);
      if (kind === 'parked') park(socket);
      else {
        if (kind === 'idle') socket.write(hello);
        watchLastWord(socket, kind === 'idle');
      }
    });
    socket.on('error', (error) => {
      if (!connected) {
        counters.connectErrors[error.code] = (counters.connectErrors[error.code] ?? 0) + 1;
        resolve(false);
      }
    });
    socket.once('close', () => {
      if (!connected) return;
      counters[`${kind}Open`]--;
      counters.closedByDaemon++;
      if (RECONNECT_MS >= 0) setTimeout(() => reopen(kind), RECONNECT_MS);
    });
  });
}

/** Keeps trying (the accept backlog fills up under load: EAGAIN) until connected. */
async function reopen(kind) {
  for (let attempt = 0; attempt < 1000; attempt++) {
    if (await open(kind)) return;
    await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 80));
  }
}

/** A silent or idle connection reads only to learn why it was closed (the daemon's last word, if any). */
function watchLastWord(socket, skipHelloAnswer) {
  socket.setEncoding('utf8');
  let text = '';
  let skip = skipHelloAnswer;
  socket.on('data', (chunk) => {
    text += chunk;
    let end;
    while ((end = text.indexOf('\f')) !== -1) {
      const frame = text.slice(0, end);
      text = text.slice(end + 1);
      if (skip) {
        skip = false;
        continue;
      }
      let code = 'unreadable';
      try {
        code = JSON.parse(frame).data?.error?.code ?? 'none';
      } catch {
        // counted as unreadable
      }
      counters.codes[code] = (counters.codes[code] ?? 0) + 1;
    }
  });
}

/** hello, then status requests as fast as the socket takes them; answers are never read. */
function park(socket) {
  socket.pause();
  socket.write(hello);
  let written = 0;
  const pump = () => {
    while (written < REQUESTS_PER_PARKED && !socket.destroyed) {
      written += BATCH;
      counters.requestsWritten += BATCH;
      if (!socket.write(statusBatch)) {
        socket.once('drain', pump);
        return;
      }
    }
    // Never reading, a closed connection shows only when a write fails.
    const timer = setInterval(() => {
      if (socket.destroyed) return clearInterval(timer);
      counters.requestsWritten++;
      socket.write(oneStatus);
    }, 1000);
    socket.once('close', () => clearInterval(timer));
  };
  pump();
}

/** Opens every connection, BATCH at a time, parked ones spread among the silent ones. */
async function openAll() {
  const kinds = [...Array(IDLE).fill('idle')];
  for (let i = 0, parked = 0; i < SILENT + PARKED; i++) {
    const dueParked = Math.floor(((i + 1) * PARKED) / (SILENT + PARKED));
    if (parked < dueParked) {
      kinds.push('parked');
      parked++;
    } else kinds.push('silent');
  }
  for (let started = 0; started < kinds.length; started += BATCH) {
    await Promise.all(kinds.slice(started, started + BATCH).map((kind) => reopen(kind)));
  }
}

const report = (extra = {}) => process.stdout.write(JSON.stringify({ ...counters, ...extra }) + '\n');
const timer = setInterval(report, 1000);
process.on('SIGTERM', () => {
  clearInterval(timer);
  report({ final: true });
  process.exit(0);
});
const started = Date.now();
await openAll();
report({ ready: true, openMs: Date.now() - started });
