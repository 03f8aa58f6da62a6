#!/usr/bin/env node
/**
 * The load generator: N concurrent clients, each with one request outstanding at a time (closed loop),
 * against one of
 *   broker  — the tokenbroker daemon through the real client library (dist/client), token.get
 *   floor   — floor-server.mjs: a minimal node:net JSON ping-pong with the same framing and payload
 *   broker-raw — the daemon through the floor's minimal client (hello, then token.get): isolates the daemon
 *   agent   — oidc-agent's socket, plain-JSON access_token requests (it serves one request per connection)
 * `perRequest` opens a new connection for every request (broker: connect + hello + token.get + close).
 *
 * Runs `warmupMs` unrecorded, then records for `durationMs` (or until `requests` completed), and prints one
 * JSON object with the counts and latency percentiles (ms) on stdout. Plain Node ESM, no TypeScript loader:
 * the client library is measured as it ships (compiled).
 */
import fs from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';

const config = JSON.parse(process.argv[2] ?? '{}');
const {
  target,
  socketPath,
  clients = 1,
  warmupMs = 300,
  durationMs = 2000,
  requests = 0,
  perRequest = false,
  account = 'bench',
  distClient,
  expectToken,
  serverPid,
  profiles = 0,
  profilePrefix = 'p',
} = config;

/** Client i asks for profile `${profilePrefix}${i % profiles}` (4 digits) when `profiles` > 0; else the default. */
const profileFor = (i) => (profiles > 0 ? { profile: `${profilePrefix}${String(i % profiles).padStart(4, '0')}` } : {});
/** Errors that mean the connection failed (not the request). */
const CONNECTION_CODES = new Set(['DAEMON_NOT_RUNNING', 'CONNECTION_LOST', 'SOCKET_UNTRUSTED', 'ECONNREFUSED', 'EAGAIN', 'ENOENT', 'ECONNRESET', 'EPIPE']);

/** utime + stime of the server process in µs (Linux /proc; clock ticks of 10 ms). */
function serverCpu() {
  if (!serverPid) return 0;
  try {
    const stat = fs.readFileSync(`/proc/${serverPid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return 0;
  }
}

const TOKEN_GET = (id) => `{"type":"request","data":{"id":${id},"method":"token.get","params":{"waitMs":9500}}}\f`;

let recording = false;
let stopped = false;
let completed = 0;
let errors = 0;
let connectErrors = 0;
let wrongToken = 0;
const errorSamples = new Set();
const latencies = [];

function noteError(kind, error) {
  if (kind === 'connect' || CONNECTION_CODES.has(error?.code)) connectErrors++;
  else errors++;
  if (errorSamples.size < 5) errorSamples.add(`${kind}: ${error?.code ?? ''} ${error?.message ?? error}`.slice(0, 200));
}

function check(token) {
  if (typeof token !== 'string' || token.length === 0 || (expectToken && token !== expectToken)) wrongToken++;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- a raw framed connection (floor) --------------------------------------------------------------

function rawConnect(path) {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path });
    socket.once('connect', () => {
      socket.removeListener('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** One outstanding request at a time on a persistent socket, `\f`-framed JSON both ways. */
function framed(socket) {
  socket.setEncoding('utf8');
  socket.setNoDelay(true);
  let buffer = '';
  let waiting;
  let id = 0;
  socket.on('data', (chunk) => {
    buffer += chunk;
    let end;
    while ((end = buffer.indexOf('\f')) !== -1) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
      const w = waiting;
      waiting = undefined;
      w?.resolve(JSON.parse(frame));
    }
  });
  socket.on('error', (error) => waiting?.reject(error));
  socket.on('close', () => waiting?.reject(new Error('closed')));
  return {
    request() {
      return new Promise((resolve, reject) => {
        waiting = { resolve, reject };
        socket.write(TOKEN_GET(++id));
      });
    },
    hello() {
      return new Promise((resolve, reject) => {
        waiting = { resolve, reject };
        socket.write('{"type":"request","data":{"id":0,"method":"hello","params":{"protocolVersion":1,"client":"bench-raw"}}}\f');
      });
    },
    close: () => socket.destroy(),
  };
}

// ---- drivers: each returns { setup(), once(), teardown() } per client ----------------------------

async function brokerDriver() {
  const { connect } = await import(distClient);
  if (perRequest) {
    return (i) => ({
      async once() {
        let client;
        try {
          client = await connect({ socketPath, reconnect: false, clientName: 'bench' });
        } catch (error) {
          noteError('connect', error);
          return false;
        }
        try {
          check((await client.getToken(profileFor(i))).accessToken);
          return true;
        } finally {
          await client.close();
        }
      },
      async teardown() {},
    });
  }
  return async (i) => {
    const client = await connect({ socketPath, reconnect: false, clientName: 'bench' });
    const options = profileFor(i);
    return {
      async once() {
        check((await client.getToken(options)).accessToken);
        return true;
      },
      teardown: () => client.close(),
    };
  };
}

async function floorDriver(hello) {
  return async () => {
    const connection = framed(await rawConnect(socketPath));
    if (hello) await connection.hello();
    return {
      async once() {
        const answer = await connection.request();
        check(answer.data.result.accessToken);
        return true;
      },
      async teardown() {
        connection.close();
      },
    };
  };
}

/** oidc-agent: connect, one JSON request, read the JSON answer, close. EAGAIN (backlog full) is retried. */
async function agentDriver() {
  const request = JSON.stringify({ request: 'access_token', account, min_valid_period: 60, application_hint: 'bench' });
  const once = () =>
    new Promise((resolve, reject) => {
      const socket = net.createConnection({ path: socketPath });
      let text = '';
      let connected = false;
      socket.setEncoding('utf8');
      socket.once('connect', () => {
        connected = true;
        socket.write(request);
      });
      socket.on('data', (chunk) => {
        text += chunk;
        let answer;
        try {
          answer = JSON.parse(text);
        } catch {
          return; // incomplete
        }
        socket.destroy();
        if (answer.status !== 'success') reject(Object.assign(new Error(answer.error ?? 'agent error'), { phase: 'request' }));
        else resolve(answer.access_token);
      });
      socket.once('error', (error) => {
        socket.destroy();
        reject(Object.assign(error, { phase: connected ? 'request' : 'connect' }));
      });
      socket.once('close', () => reject(Object.assign(new Error('closed without an answer'), { phase: 'request' })));
    });
  return async () => ({
    async once() {
      for (let attempt = 0; ; attempt++) {
        try {
          check(await once());
          return true;
        } catch (error) {
          if (error.phase !== 'connect' || stopped) throw error;
          noteError('connect', error);
          await sleep(1); // backlog full (EAGAIN): try again
        }
      }
    },
    async teardown() {},
  });
}

// ---- the loop -------------------------------------------------------------------------------------

const makeClient = await (target === 'broker'
  ? brokerDriver()
  : target === 'floor' || target === 'broker-raw'
    ? floorDriver(target === 'broker-raw')
    : agentDriver());
const sessions = await Promise.all(Array.from({ length: clients }, (_, i) => makeClient(i)));

let recordedStart;
let recordedEnd = 0;
let doneResolve;
const done = new Promise((resolve) => (doneResolve = resolve));

async function loop(session) {
  while (!stopped) {
    const t0 = performance.now();
    let ok = false;
    try {
      ok = await session.once();
    } catch (error) {
      noteError('request', error);
    }
    if (!recording || stopped) continue;
    if (ok) {
      latencies.push(performance.now() - t0);
      completed++;
      if (requests > 0 && completed >= requests) {
        stopped = true;
        recordedEnd = performance.now();
        doneResolve();
      }
    }
  }
}

const loops = sessions.map((s) => loop(s));
await sleep(warmupMs);
completed = 0;
errors = 0;
wrongToken = 0;
recording = true;
recordedStart = performance.now();
const cpuStart = process.cpuUsage();
const serverCpuStart = serverCpu();
if (requests > 0) {
  // Bounded: at most 10 minutes even when the target stalls.
  await Promise.race([done, sleep(600_000)]);
} else {
  await sleep(durationMs);
}
if (!stopped) {
  stopped = true;
  recordedEnd = performance.now();
}
const cpu = process.cpuUsage(cpuStart);
const serverCpuUsed = serverCpu() - serverCpuStart;
recording = false;
await Promise.race([Promise.all(loops), sleep(15_000)]);
await Promise.all(sessions.map((s) => s.teardown().catch(() => undefined)));

latencies.sort((a, b) => a - b);
const pick = (q) => (latencies.length === 0 ? null : latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)]);
const elapsedMs = recordedEnd - recordedStart;
process.stdout.write(
  JSON.stringify({
    target,
    clients,
    perRequest,
    completed,
    elapsedMs,
    rps: (completed / elapsedMs) * 1000,
    p50: pick(0.5),
    p99: pick(0.99),
    p999: pick(0.999),
    max: latencies.length ? latencies[latencies.length - 1] : null,
    errors,
    connectErrors,
    clientCpuUsPerRequest: completed ? (cpu.user + cpu.system) / completed : null,
    serverCpuUsPerRequest: serverPid && completed ? serverCpuUsed / completed : null,
    wrongToken,
    errorSamples: [...errorSamples],
  }) + '\n',
);
process.exit(0);
