/**
 * Hostile clients (issue 7, item 1): the real daemon against generated frames, floods, stalls and
 * thousands of idle connections, while a well-behaved bystander app keeps asking for `status` and a
 * token. Figures are printed as a table at the end (and written to $TOKENBROKER_HARDENING_REPORT/fuzz.md
 * when that directory is set).
 *
 *   node scripts/with-keyring.mjs vitest run test/hardening/fuzz.test.ts                      # CI size
 *   TOKENBROKER_FUZZ_FRAMES=100000 node scripts/with-keyring.mjs vitest run test/hardening/fuzz.test.ts
 *
 * Knobs: TOKENBROKER_FUZZ_FRAMES (default 20000), TOKENBROKER_FUZZ_IDLE (idle connections, 2000),
 * TOKENBROKER_FUZZ_FLOODS (4), TOKENBROKER_FUZZ_STALLS (200), TOKENBROKER_FUZZ_SEED (random; printed),
 * TOKENBROKER_FUZZ_DAEMON_HEAP_MB (64: the daemon runs with --max-old-space-size=64, so unbounded growth
 * would kill it; 0 for Node's default).
 */
import { randomBytes, randomInt } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type BrokerClient } from '../../client/index.js';
import { Secret } from '../../daemon/secret.js';
import { KeychainStore } from '../../daemon/store/keychain.js';
import { EVENT_NAMES, MAX_MESSAGE_BYTES } from '../../proto/index.js';
import { FAKE_BROWSER } from '../support/browser-user.js';
import { startDaemon, tempDir, waitFor, type DaemonProcess } from '../support/daemon.js';
import { CATEGORIES, FrameGenerator, createRng, helloFrame, splitRandomly, type Category, type Frame, type Rng, type Script } from '../support/fuzz.js';
import { rawConnect } from '../support/raw-client.js';
import { closedPort } from '../support/closed-port.js';

const env = (name: string, fallback: number): number => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer`);
  return value;
};
const FRAMES = env('TOKENBROKER_FUZZ_FRAMES', 20_000);
const FLOODS = env('TOKENBROKER_FUZZ_FLOODS', 4);
const STALLS = env('TOKENBROKER_FUZZ_STALLS', 200);
const SEED = env('TOKENBROKER_FUZZ_SEED', randomInt(2 ** 31));
/**
 * The daemon's V8 old-space cap for this run (MiB). A leak per frame or per connection would make the
 * daemon die of heap exhaustion long before the end of a full run; 0 leaves Node's default.
 */
const DAEMON_HEAP_MB = env('TOKENBROKER_FUZZ_DAEMON_HEAP_MB', 64);
const WORKERS = 8;
/** What the whole frame phase may take: generous, the machine is shared. */
const FRAME_PHASE_TIMEOUT_MS = 60_000 + FRAMES * 4;

/** Idle connections: as many as asked, but leave room under the open-files limit of both processes. */
function idleTarget(): { wanted: number; used: number; limit: number } {
  const wanted = env('TOKENBROKER_FUZZ_IDLE', 2_000);
  const limits = fs.readFileSync('/proc/self/limits', 'utf8');
  const limit = Number(/Max open files\s+(\d+)/.exec(limits)?.[1] ?? 1024);
  return { wanted, used: Math.max(0, Math.min(wanted, limit - 512)), limit };
}

// ---- the daemon under attack and its bystander ------------------------------------------------

let daemon: DaemonProcess;
let pid: number;
let bystander: BrokerClient;
let keychainService: string;
let browserLog: string;
const ACTIVE = 'main';
const ACCESS_TOKEN = `fuzz-access-${randomBytes(12).toString('hex')}`;

interface ProcStats {
  rssKb: number;
  hwmKb: number;
  fds: number;
}
function procStats(): ProcStats {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { rssKb: field('VmRSS'), hwmKb: field('VmHWM'), fds: fs.readdirSync(`/proc/${pid}/fd`).length };
}

/** A well-behaved app: status and token.get, one at a time, all through the test; latency per phase. */
class Bystander {
  phase = 'baseline';
  readonly samples = new Map<string, number[]>();
  readonly failures: string[] = [];
  private running = true;
  private readonly done: Promise<void>;

  constructor(private readonly client: BrokerClient) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    let turn = 0;
    while (this.running) {
      const phase = this.phase;
      const started = performance.now();
      try {
        if (turn++ % 2 === 0) {
          const status = await this.client.status({ timeoutMs: 5_000 });
          if (status.pid !== pid) this.failures.push(`${phase}: status from pid ${status.pid}`);
        } else {
          const token = await this.client.getToken({ profile: ACTIVE, timeoutMs: 5_000 });
          if (token.accessToken !== ACCESS_TOKEN) this.failures.push(`${phase}: wrong token`);
        }
        const list = this.samples.get(phase) ?? [];
        list.push(performance.now() - started);
        this.samples.set(phase, list);
      } catch (error) {
        this.failures.push(`${phase}: ${(error as Error).message}`);
      }
      await sleep(5);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }

  stats(phase: string): { n: number; p50: number; p99: number; max: number } {
    const list = [...(this.samples.get(phase) ?? [])].sort((a, b) => a - b);
    const at = (q: number) => list[Math.min(list.length - 1, Math.floor(q * list.length))] ?? NaN;
    return { n: list.length, p50: at(0.5), p99: at(0.99), max: list[list.length - 1] ?? NaN };
  }
}
let watcher: Bystander;

// ---- figures -------------------------------------------------------------------------------------

interface CategoryCounts {
  inputs: number;
  results: number;
  errors: number;
  closed: number;
  unanswered: number;
  wrong: number;
}
const counts = new Map<Category, CategoryCounts>(CATEGORIES.map((c) => [c, { inputs: 0, results: 0, errors: 0, closed: 0, unanswered: 0, wrong: 0 }]));
const errorCodes = new Map<string, number>();
const failures: string[] = [];
const figures: Record<string, string | number> = {};
const rss: Record<string, ProcStats> = {};
let scriptsRun = 0;
/** The daemon's VmRSS (kB) at each tenth of the frame phase. */
const rssTrail: number[] = [];
let trailingIgnored = 0;
let eventsSeen = 0;

function fail(message: string): void {
  if (failures.length < 25) failures.push(message);
  else if (failures.length === 25) failures.push('… (more failures not shown)');
}

// ---- running one script ------------------------------------------------------------------------

interface WireResponse {
  id: string | number | null;
  result?: unknown;
  error?: { code: string; message: string; field?: string };
}

/** Connects, writes the script (whole or in random pieces) and collects what comes back. */
async function runScript(script: Script, index: number, rng: Rng): Promise<void> {
  const frames: Frame[] = [...(script.hello ? [helloFrame(0)] : []), ...script.frames];
  const closes = frames.some((f) => f.expect.kind === 'close');
  const socket = net.createConnection({ path: daemon.socketPath });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => {});
  const responses: WireResponse[] = [];
  let buffer = '';
  let closed = false;
  let protocolError: string | undefined;
  const wanted = frames.filter((f) => f.expect.kind === 'answer').length;
  let wake: () => void = () => {};
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf('\f')) !== -1) {
      const text = buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
      let envelope: { type?: unknown; data?: WireResponse };
      try {
        envelope = JSON.parse(text) as typeof envelope;
      } catch {
        protocolError = `the daemon sent invalid JSON: ${text.slice(0, 100)}`;
        continue;
      }
      if (envelope.type === 'event') eventsSeen++;
      else if (envelope.type === 'response' && envelope.data) responses.push(envelope.data);
      else protocolError = `unexpected envelope from the daemon: ${text.slice(0, 100)}`;
    }
    wake();
  });
  socket.once('close', () => {
    closed = true;
    wake();
  });

  const bytes = Buffer.concat([...frames, ...script.trailing].map((f) => f.bytes));
  if (script.chunked) {
    for (const piece of splitRandomly(rng, bytes, rng.range(2, 12))) {
      if (socket.destroyed) break;
      socket.write(piece);
      await (rng.chance(0.5) ? new Promise((r) => setImmediate(r)) : sleep(rng.int(3)));
    }
  } else socket.write(bytes);

  const deadline = Date.now() + 20_000;
  while (!(closes ? closed : closed || responses.length >= wanted) && Date.now() < deadline) {
    await Promise.race([new Promise<void>((resolve) => (wake = resolve)), sleep(100)]);
  }
  // A keep-open script: a moment more, to catch extra answers.
  if (!closes && !closed) await new Promise((r) => setImmediate(r));
  const where = `script #${index}`;
  if (!closed && closes) fail(`${where}: the daemon did not close the connection after a bad frame`);
  socket.destroy();
  if (protocolError) fail(`${where}: ${protocolError}`);
  scriptsRun++;
  if (!closes && closed && responses.length < wanted) fail(`${where}: the daemon closed a connection that sent only well-framed requests`);
  check(script, frames, responses, closes, where);
}

/** Matches answers to frames and counts per category. */
function check(script: Script, frames: readonly Frame[], responses: WireResponse[], closes: boolean, where: string): void {
  const byId = new Map<string | number, WireResponse[]>();
  const nulls: WireResponse[] = [];
  for (const response of responses) {
    if (response.error?.code === 'INTERNAL') fail(`${where}: INTERNAL error answered: ${response.error.message}`);
    if (response.error) errorCodes.set(response.error.code, (errorCodes.get(response.error.code) ?? 0) + 1);
    if (response.id === null) nulls.push(response);
    else byId.set(response.id, [...(byId.get(response.id) ?? []), response]);
  }
  // The closing frame's answer is the last null-id answer, and the last answer overall.
  if (closes) {
    const last = responses[responses.length - 1];
    if (!last || last.id !== null || last.error?.code !== 'BAD_REQUEST')
      fail(`${where}: the connection closed without a final BAD_REQUEST (id null): ${JSON.stringify(last)?.slice(0, 200)}`);
  }
  for (const frame of frames) {
    const c = counts.get(frame.category)!;
    c.inputs++;
    const expect = frame.expect;
    if (expect.kind === 'close') {
      const answer = nulls.pop();
      if (answer?.error?.code === 'BAD_REQUEST') {
        c.errors++;
        c.closed++;
      } else c.unanswered++;
      continue;
    }
    let answer: WireResponse | undefined;
    if (expect.id === null) answer = nulls.shift();
    else {
      const list = byId.get(expect.id);
      answer = list?.shift();
      if (list && list.length > 0) fail(`${where}: id ${expect.id} answered more than once`);
      byId.delete(expect.id);
    }
    if (!answer) {
      // With a closing frame, answers still in flight (async handlers) may be cut off with the connection.
      if (!closes) {
        c.unanswered++;
        fail(`${where}: no answer to a ${frame.category} frame (id ${String(expect.id)}): ${frame.bytes.toString('utf8').slice(0, 160)}`);
      }
      continue;
    }
    const outcome = answer.error ? answer.error.code : 'result';
    if (answer.error) c.errors++;
    else c.results++;
    const badOutcome = expect.outcomes !== undefined && !expect.outcomes.includes(outcome);
    const field = answer.error?.field;
    const badField =
      expect.field !== undefined &&
      expect.id !== null && // null-id answers are matched in order only; their fields are not compared
      !(expect.field.endsWith('*') ? field?.startsWith(expect.field.slice(0, -1)) : field === expect.field);
    if (badOutcome || badField) {
      c.wrong++;
      fail(
        `${where}: ${frame.category} frame ${frame.bytes.toString('utf8').slice(0, 160)} → expected ${expect.outcomes?.join('|')} ${expect.field ?? ''}, got ${outcome} ${field ?? ''}: ${answer.error?.message ?? ''}`,
      );
    }
  }
  for (const [id, extra] of byId) if (extra.length > 0) fail(`${where}: unexpected answer for id ${id} (a frame after the closing one was answered?)`);
  if (nulls.length > 0) fail(`${where}: ${nulls.length} unexpected null-id answers`);
  trailingIgnored += script.trailing.length;
}

// ---- connection-level attacks --------------------------------------------------------------------

/** hello, then requests written as fast as possible while never reading an answer. */
async function flood(): Promise<{ closed: boolean; requests: number; bytes: number; ms: number; answerBytes: number }> {
  const raw = await rawConnect(daemon.socketPath); // hello done
  raw.request(1, 'status', {});
  const answerBytes = Buffer.byteLength(JSON.stringify(await raw.next())) + 1;
  const socket = raw.socket;
  socket.pause();
  socket.removeAllListeners('data'); // never read again
  let closed = false;
  socket.once('close', () => (closed = true));
  const batch = Array.from({ length: 500 }, (_, i) => JSON.stringify({ type: 'request', data: { id: i + 1, method: 'status' } }) + '\f').join('');
  const started = Date.now();
  let requests = 0;
  let bytes = 0;
  while (!closed && bytes < 256 * 1024 * 1024 && Date.now() - started < 30_000) {
    const flushed = socket.write(batch);
    requests += 500;
    bytes += batch.length;
    if (!flushed) await Promise.race([new Promise((r) => socket.once('drain', r)), new Promise((r) => socket.once('close', r)), sleep(1_000)]);
    else await new Promise((r) => setImmediate(r));
  }
  socket.destroy();
  return { closed, requests, bytes, ms: Date.now() - started, answerBytes };
}

/** Half a frame, then nothing: the incomplete-frame timeout must close it. */
async function stall(): Promise<number> {
  const raw = await rawConnect(daemon.socketPath);
  raw.write('{"type":"request","data":{"id":1,"method":"sta');
  const started = Date.now();
  await Promise.race([raw.closed, sleep(15_000)]);
  const ms = Date.now() - started;
  raw.close();
  return ms;
}

/**
 * A bad frame, and then the client ignores the error and goes on writing without ever closing its
 * side: the daemon must close the connection for good (not only its own half) and answer nothing more.
 */
async function ignoreTheError(): Promise<{ closedMs: number | undefined; answersAfter: number }> {
  const socket = net.createConnection({ path: daemon.socketPath, allowHalfOpen: true });
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.on('error', () => {});
  let answers = 0;
  let closed = false;
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (answers += chunk.split('\f').length - 1));
  socket.once('close', () => (closed = true));
  socket.write(JSON.stringify({ type: 'request', data: { id: 0, method: 'hello', params: { protocolVersion: 1 } } }) + '\f');
  await waitFor(
    () => answers === 1,
    5_000,
    () => 'hello answer',
  );
  socket.write('not json\f');
  await waitFor(
    () => answers === 2,
    5_000,
    () => 'error answer',
  );
  const started = Date.now();
  let id = 1;
  while (!closed && Date.now() - started < 5_000) {
    if (!socket.destroyed && socket.writable) socket.write(JSON.stringify({ type: 'request', data: { id: id++, method: 'status' } }) + '\f');
    await sleep(20);
  }
  const result = { closedMs: closed ? Date.now() - started : undefined, answersAfter: answers - 2 };
  socket.destroy();
  return result;
}

let connectRetries = 0;

/** One idle connection (with or without hello). EAGAIN (accept backlog momentarily full) is retried. */
async function openIdle(hello: boolean): Promise<net.Socket> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const socket = net.createConnection({ path: daemon.socketPath });
        socket.once('connect', () => {
          socket.removeAllListeners('error');
          socket.on('error', () => {});
          if (hello) socket.write(JSON.stringify({ type: 'request', data: { id: 0, method: 'hello', params: { protocolVersion: 1 } } }) + '\f');
          resolve(socket);
        });
        socket.once('error', reject);
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN' || attempt >= 250) throw error;
      connectRetries++;
      await sleep(20);
    }
  }
}

// ---- the test --------------------------------------------------------------------------------------

beforeAll(async () => {
  keychainService = `tokenbroker-fuzz-${randomBytes(6).toString('hex')}`;
  // A signed-in profile without any provider: its session comes from the keychain, served from memory.
  // Never contacted (the session is served from memory); a port that refuses, in case it were.
  const issuer = `http://127.0.0.1:${await closedPort()}`;
  await new KeychainStore({ service: keychainService }).save(ACTIVE, {
    accessToken: new Secret(ACCESS_TOKEN),
    expiresAt: Date.now() + 30 * 24 * 3600_000,
    scopes: ['openid'],
    tokenType: 'Bearer',
    subject: 'fuzz-user',
    issuer,
    clientId: 'fuzz',
    savedAt: Date.now(),
  });
  const dir = tempDir('tb-fuzz-');
  browserLog = path.join(dir, 'browser.log');
  const profile = { issuer, clientId: 'fuzz', redirectUri: 'com.example.broker:/callback' };
  daemon = await startDaemon({
    dir,
    logLevel: 'info',
    config: { profiles: { [ACTIVE]: profile, other: profile } },
    env: {
      TOKENBROKER_KEYCHAIN_SERVICE: keychainService,
      BROWSER: FAKE_BROWSER,
      TOKENBROKER_TEST_BROWSER_LOG: browserLog,
      ...(DAEMON_HEAP_MB > 0 ? { NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --max-old-space-size=${DAEMON_HEAP_MB}`.trim() } : {}),
    },
  });
  pid = daemon.child.pid!;
  bystander = await connect({ socketPath: daemon.socketPath, clientName: 'bystander' });
  console.log(`hardening-fuzz: seed ${SEED} (TOKENBROKER_FUZZ_SEED=${SEED} reproduces this run), ${FRAMES} frames`);
});

afterAll(async () => {
  await watcher?.stop();
  await bystander?.close();
  await daemon?.stop('SIGKILL');
  await new KeychainStore({ service: keychainService }).delete(ACTIVE).catch(() => false);
  await new KeychainStore({ service: keychainService }).delete('other').catch(() => false);
  printSummary();
});

describe('hostile clients', () => {
  it('baseline: the bystander is served', async () => {
    rss['before'] = procStats();
    watcher = new Bystander(bystander);
    await waitFor(
      () => watcher.stats('baseline').n >= 200,
      20_000,
      () => 'baseline samples',
    );
    expect(watcher.failures).toEqual([]);
  });

  it(
    `${FRAMES} generated frames: every one answered or its connection closed`,
    async () => {
      watcher.phase = 'frames';
      const generator = new FrameGenerator(createRng(SEED), { protectedProfiles: [ACTIVE, 'other'], activeProfile: ACTIVE });
      let sent = 0;
      let index = 0;
      const started = Date.now();
      // The daemon's resident memory at each tenth of the run: it should level off, not climb steadily.
      let nextSample = 0;
      const worker = async (): Promise<void> => {
        while (sent < FRAMES) {
          const script = generator.script();
          const i = index++;
          sent += script.frames.length + (script.hello ? 1 : 0);
          await runScript(script, i, createRng(SEED ^ (i * 2654435761)));
          if (sent >= nextSample) {
            nextSample += FRAMES / 10;
            rssTrail.push(procStats().rssKb);
          }
        }
      };
      await Promise.all(Array.from({ length: WORKERS }, worker));
      figures['frame phase'] = `${sent} frames in ${scriptsRun} connections, ${((Date.now() - started) / 1000).toFixed(1)} s`;
      figures['daemon VmRSS at each tenth of the frame phase (MiB)'] = rssTrail.map((kb) => (kb / 1024).toFixed(0)).join(' → ');
      rss['after frames'] = procStats();
      expect(failures).toEqual([]);
      expect(daemon.child.exitCode).toBeNull();
    },
    FRAME_PHASE_TIMEOUT_MS,
  );

  it('floods without reading are cut at the 4 MiB unread cap; half frames time out; an ignored error still closes', async () => {
    watcher.phase = 'abuse';
    const [floods, stalls, ignorers] = await Promise.all([
      Promise.all(Array.from({ length: FLOODS }, flood)),
      Promise.all(Array.from({ length: STALLS }, stall)),
      Promise.all(Array.from({ length: 20 }, ignoreTheError)),
    ]);
    rss['after abuse'] = procStats();
    const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
    figures['floods (never read)'] =
      `${floods.filter((f) => f.closed).length}/${FLOODS} cut off by the daemon; status requests the client had written by then (answers of ${floods[0]?.answerBytes ?? '?'} B each; ` +
      `the daemon reads ahead of what it answers): ${floods.map((f) => `${f.requests} (${mib(f.bytes)} MiB) in ${f.ms} ms`).join('; ')}`;
    const stallMs = stalls.sort((a, b) => a - b);
    figures['half frames (stalled)'] = `${stalls.filter((ms) => ms < 15_000).length}/${STALLS} closed, after ${stallMs[0]}–${stallMs[stallMs.length - 1]} ms`;
    figures['bad frame, error ignored'] =
      `${ignorers.filter((r) => r.closedMs !== undefined).length}/20 fully closed (max ${Math.max(...ignorers.map((r) => r.closedMs ?? Infinity))} ms), ${ignorers.reduce((n, r) => n + r.answersAfter, 0)} answers after the error`;
    expect(floods.every((f) => f.closed)).toBe(true);
    expect(stalls.every((ms) => ms >= 4_500 && ms < 12_000)).toBe(true);
    expect(ignorers.every((r) => r.closedMs !== undefined && r.closedMs < 4_000)).toBe(true);
    expect(ignorers.every((r) => r.answersAfter === 0)).toBe(true);
    expect(daemon.child.exitCode).toBeNull();
  }, 90_000);

  it('thousands of idle connections: the bystander is still served', async () => {
    const { wanted, used, limit } = idleTarget();
    watcher.phase = 'idle';
    const sockets: net.Socket[] = [];
    try {
      for (let opened = 0; opened < used; opened += 100) {
        // All after hello: a connection without one is closed at the hello deadline (hardening-exhaustion).
        const batch = await Promise.all(Array.from({ length: Math.min(100, used - opened) }, () => openIdle(true)));
        sockets.push(...batch);
      }
      await waitFor(
        async () => (await bystander.status()).connectedClients >= used + 1,
        20_000,
        () => 'all idle connections accepted',
      );
      const samplesBefore = watcher.stats('idle').n;
      await waitFor(
        () => watcher.stats('idle').n >= samplesBefore + 150,
        30_000,
        () => 'bystander samples while idle connections are open',
      );
      rss['with idle connections'] = procStats();
      expect(sockets.every((s) => !s.destroyed)).toBe(true); // idle is allowed: nobody is cut off for being quiet
      figures['idle connections'] =
        `${used} held open together (asked ${wanted}; open-files limit ${limit}); daemon fds ${rss['with idle connections'].fds}; connects retried after EAGAIN: ${connectRetries}`;
    } finally {
      for (const socket of sockets) socket.destroy();
    }
    await waitFor(
      async () => (await bystander.status()).connectedClients === 1,
      20_000,
      () => 'idle connections gone',
    );
  }, 120_000);

  it('afterwards: same process, bounded memory, nothing polluted, nothing logged as an error, no browser opened', async () => {
    watcher.phase = 'after';
    await waitFor(
      () => watcher.stats('after').n >= 50,
      10_000,
      () => 'after samples',
    );
    await watcher.stop();
    expect(watcher.failures).toEqual([]);
    expect(daemon.child.exitCode).toBeNull();
    const status = await bystander.status();
    expect(status.pid).toBe(pid);
    expect(JSON.stringify(status)).not.toMatch(/polluted|isAdmin/);

    // Prototype-pollution canaries: a fresh connection still needs hello; no default profile appeared.
    const fresh = await rawConnect(daemon.socketPath, { hello: false });
    fresh.request(1, 'status', {});
    expect((await fresh.next()).data).toMatchObject({ id: 1, error: { code: 'BAD_REQUEST', field: 'method' } });
    fresh.request(2, 'hello', { protocolVersion: 1 });
    await fresh.next();
    fresh.request(3, 'token.get', {});
    expect((await fresh.next()).data).toMatchObject({ id: 3, error: { code: 'PROFILE_NOT_FOUND' } });
    fresh.request(4, 'subscribe', {});
    expect((await fresh.next()).data).toMatchObject({ id: 4, result: { events: [...EVENT_NAMES] } });
    fresh.request(5, 'token.get', { profile: ACTIVE });
    expect((await fresh.next()).data).toMatchObject({ id: 5, result: { accessToken: ACCESS_TOKEN } });
    fresh.close();

    rss['after'] = procStats();
    const logs = daemon.logs();
    const errorLines = logs.filter((line) => line['level'] === 'error' || line['level'] === 'fatal');
    figures['daemon log lines at error/fatal'] = errorLines.length;
    expect(errorLines.map((l) => l['msg'])).toEqual([]);
    expect(fs.existsSync(browserLog) ? fs.readFileSync(browserLog, 'utf8') : '').toBe('');
    // Memory. The JS heap is bounded by the cap the daemon ran with (it would have died otherwise); the
    // resident size levels off (glibc and V8 keep what they once used, so it does not shrink back).
    expect(rss['after'].hwmKb).toBeLessThan(400 * 1024);
    if (FRAMES >= 100_000) {
      const half = rssTrail[Math.floor(rssTrail.length / 2)]!;
      expect(rssTrail[rssTrail.length - 1]! - half, 'VmRSS growth over the second half of the frames').toBeLessThan(32 * 1024);
    }
    // The bystander was served throughout (no call failed or took 5 s), and never stalled: medians stay
    // in milliseconds and the 99th percentile under a second even on a shared, loaded 2-core machine
    // (the figures printed above are what to compare; a blocked event loop would show as seconds).
    for (const phase of ['baseline', 'frames', 'abuse', 'idle', 'after']) {
      expect(watcher.stats(phase).p50, phase).toBeLessThan(100);
      expect(watcher.stats(phase).p99, phase).toBeLessThan(1_000);
    }
  }, 30_000);
});

function printSummary(): void {
  const lines: string[] = [];
  lines.push(`### Hostile clients — seed ${SEED}, ${FRAMES} frames asked, daemon heap cap ${DAEMON_HEAP_MB > 0 ? `${DAEMON_HEAP_MB} MiB` : 'none'}`, '');
  lines.push('| category | inputs | answered (result) | answered (error) | closed by the daemon | unanswered | wrong answer |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|');
  const total = { inputs: 0, results: 0, errors: 0, closed: 0, unanswered: 0, wrong: 0 };
  for (const [category, c] of counts) {
    lines.push(`| ${category} | ${c.inputs} | ${c.results} | ${c.errors} | ${c.closed} | ${c.unanswered} | ${c.wrong} |`);
    for (const key of Object.keys(total) as Array<keyof typeof total>) total[key] += c[key];
  }
  lines.push(`| **all frames** | **${total.inputs}** | ${total.results} | ${total.errors} | ${total.closed} | ${total.unanswered} | ${total.wrong} |`, '');
  lines.push(`Frames written after a closing frame (must get no answer): ${trailingIgnored}. Events seen on fuzz connections: ${eventsSeen}.`);
  lines.push(
    `Error codes answered: ${[...errorCodes]
      .sort((a, b) => b[1] - a[1])
      .map(([code, n]) => `${code} ${n}`)
      .join(', ')}.`,
    '',
  );
  lines.push('| scenario | figure |', '|---|---|');
  for (const [name, value] of Object.entries(figures)) lines.push(`| ${name} | ${value} |`);
  lines.push(`| daemon crashes | ${daemon?.child.exitCode === null || daemon?.child.signalCode === 'SIGKILL' ? 0 : 1} (same pid ${pid} throughout) |`, '');
  lines.push('| daemon memory | VmRSS | VmHWM (peak) | open fds |', '|---|---:|---:|---:|');
  for (const [when, s] of Object.entries(rss)) lines.push(`| ${when} | ${(s.rssKb / 1024).toFixed(1)} MiB | ${(s.hwmKb / 1024).toFixed(1)} MiB | ${s.fds} |`);
  lines.push('', '| bystander phase | calls | p50 ms | p99 ms | max ms |', '|---|---:|---:|---:|---:|');
  for (const phase of ['baseline', 'frames', 'abuse', 'idle', 'after']) {
    const s = watcher?.stats(phase);
    if (s) lines.push(`| ${phase} | ${s.n} | ${s.p50.toFixed(2)} | ${s.p99.toFixed(2)} | ${s.max.toFixed(2)} |`);
  }
  lines.push(`Bystander failures: ${watcher?.failures.length ?? 'n/a'}. Frame size limit ${MAX_MESSAGE_BYTES} bytes.`);
  if (failures.length > 0) lines.push('', 'Failures:', ...failures.map((f) => `- ${f}`));
  const text = lines.join('\n');
  console.log(text);
  const dir = process.env['TOKENBROKER_HARDENING_REPORT'];
  if (dir) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'fuzz.md'), text + '\n');
  }
}
