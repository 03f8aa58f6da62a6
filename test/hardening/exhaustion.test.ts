/**
 * One local client must not exhaust the daemon: a hostile process (test/support/hostile-connections.mjs, a
 * child process, so this test process is not the bottleneck) holds thousands of silent connections (no byte
 * sent) and connections that send `status` requests and never read an answer, and opens each one again when
 * the daemon closes it. Meanwhile the daemon must stay up, its RSS within 300 MiB, and apps that connect
 * anew must get a token quickly.
 *
 *   node scripts/with-keyring.mjs npx vitest run test/hardening/exhaustion.test.ts        # CI size: 2000 + 500
 *   TOKENBROKER_EXHAUSTION_SILENT=8192 TOKENBROKER_EXHAUSTION_PARKED=2000 node scripts/with-keyring.mjs …  # full
 *
 * The connection-cap case always opens 8192 + 100 idle connections (the cap is not configurable).
 * Knobs: TOKENBROKER_EXHAUSTION_SILENT (2000), TOKENBROKER_EXHAUSTION_PARKED (500),
 * TOKENBROKER_EXHAUSTION_SAMPLES (newly connecting apps, 200), TOKENBROKER_EXHAUSTION_P99_MS (50).
 * Figures go to docs/hardening-figures.md ("Exhaustion: a total budget across connections").
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerError, connect } from '../../client/index.js';
import { Secret } from '../../daemon/secret.js';
import { KeychainStore } from '../../daemon/store/keychain.js';
import { ROOT, startDaemon, tempDir, waitFor, type DaemonProcess } from '../support/daemon.js';
import { closedPort } from '../support/closed-port.js';

const env = (name: string, fallback: number): number => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer`);
  return value;
};
// CI size by default; the full figure (8192 + 2000) with TOKENBROKER_EXHAUSTION_SILENT=8192 TOKENBROKER_EXHAUSTION_PARKED=2000.
const SILENT = env('TOKENBROKER_EXHAUSTION_SILENT', 2000);
const PARKED = env('TOKENBROKER_EXHAUSTION_PARKED', 500);
const SAMPLES = env('TOKENBROKER_EXHAUSTION_SAMPLES', 200);
/**
 * The bound asserted on the newcomers' p99. The target is 50 ms (TOKENBROKER_EXHAUSTION_P99_MS=50); the default
 * is generous for a shared CI machine, and still fails on a lockout (newcomers then fail outright, see below).
 */
const P99_MS = env('TOKENBROKER_EXHAUSTION_P99_MS', 1000);
/**
 * The daemon's V8 heap limit for this run (MiB; 0: Node's default). V8 grows its heap lazily under a flood of
 * short-lived answers; with a limit, growth that is not garbage would kill the daemon, which is asserted against.
 */
const DAEMON_HEAP_MB = env('TOKENBROKER_EXHAUSTION_DAEMON_HEAP_MB', 128);
/** Idle (hello, then nothing) connections for the connection-cap case: the daemon's cap (8192) and some more. */
const IDLE_AT_CAP = env('TOKENBROKER_EXHAUSTION_IDLE', 8192 + 100);
const RSS_LIMIT_MIB = 300;
/** Open files wanted by each of the daemon and the hostile process. */
const FDS = Math.max(SILENT + PARKED, IDLE_AT_CAP) + 1024;
const HOSTILE = path.join(ROOT, 'test/support/hostile-connections.mjs');
const PROFILE = 'main';
const ACCESS_TOKEN = `exhaustion-access-${randomBytes(12).toString('hex')}`;

let daemon: DaemonProcess;
let keychainService: string;
let hostile: ChildProcess | undefined;
let sampler: NodeJS.Timeout | undefined;

/** Raises this process's open-files limit (children inherit it); needs root when above the hard limit. */
function raiseFileLimit(wanted: number): number {
  const read = () => Number(/^Max open files\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 0);
  if (read() < wanted) spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${wanted}:${wanted}`]);
  return read();
}

/** The process's VmRSS in MiB; 0 once it is gone (its exit is asserted separately). */
function rssMiB(pid: number): number {
  let status: string;
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return 0;
  }
  return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN) / 1024;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

interface HostileCounters {
  silentOpen: number;
  idleOpen: number;
  parkedOpen: number;
  opened: number;
  closedByDaemon: number;
  codes: Record<string, number>;
  connectErrors: Record<string, number>;
  requestsWritten: number;
  ready?: boolean;
}

beforeAll(async () => {
  const limit = raiseFileLimit(FDS);
  if (limit < FDS) throw new Error(`the open-files limit is ${limit}, ${FDS} are needed: run as root (prlimit) or lower TOKENBROKER_EXHAUSTION_SILENT`);
  keychainService = `tokenbroker-exhaustion-${randomBytes(6).toString('hex')}`;
  // A signed-in profile without any provider: its session comes from the keychain, token.get is answered from memory.
  // Never contacted (the session is served from memory); a port that refuses, in case it were.
  const issuer = `http://127.0.0.1:${await closedPort()}`;
  await new KeychainStore({ service: keychainService }).save(PROFILE, {
    accessToken: new Secret(ACCESS_TOKEN),
    expiresAt: Date.now() + 30 * 24 * 3600_000,
    scopes: ['openid'],
    tokenType: 'Bearer',
    subject: 'exhaustion-user',
    issuer,
    clientId: 'exhaustion',
    savedAt: Date.now(),
  });
  const profile = { issuer, clientId: 'exhaustion', redirectUri: 'com.example.broker:/callback' };
  daemon = await startDaemon({
    dir: tempDir('tb-exhaustion-'),
    logLevel: 'info',
    config: { profiles: { [PROFILE]: profile } },
    env: {
      TOKENBROKER_KEYCHAIN_SERVICE: keychainService,
      BROWSER: '/bin/false',
      ...(DAEMON_HEAP_MB > 0 ? { NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --max-old-space-size=${DAEMON_HEAP_MB}`.trim() } : {}),
    },
  });
}, 60_000);

afterAll(async () => {
  clearInterval(sampler);
  hostile?.kill('SIGKILL');
  await daemon?.stop('SIGKILL');
  await new KeychainStore({ service: keychainService }).delete(PROFILE).catch(() => false);
});

interface Attack {
  readonly openedInMs: number;
  readonly atReady: HostileCounters;
  readonly final: HostileCounters;
  readonly latencies: number[];
  readonly failures: string[];
  readonly p50: number;
  readonly p99: number;
  readonly rssBefore: number;
  readonly maxRss: number;
  readonly warnings: (text: string) => number;
  readonly summary: string;
}

/**
 * Runs the hostile process with `settings` (see hostile-connections.mjs) until it has opened every connection
 * once, then connects SAMPLES new apps one after another (connect + hello + token.get each) while the attack
 * goes on, sampling the daemon's RSS every 100 ms.
 */
async function underAttack(label: string, settings: Record<string, number>): Promise<Attack> {
  const pid = daemon.child.pid!;
  const rssBefore = rssMiB(pid);
  let maxRss = rssBefore;
  sampler = setInterval(() => (maxRss = Math.max(maxRss, rssMiB(pid))), 100);
  const warningsBefore = daemon.logs().length;

  let counters: HostileCounters | undefined;
  let ready = false;
  const args = Object.entries(settings).map(([key, value]) => `${key}=${value}`);
  const child = spawn(process.execPath, [HOSTILE, daemon.socketPath, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  hostile = child;
  let buffered = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (buffered + chunk).split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      counters = JSON.parse(line) as HostileCounters;
      if (counters.ready) ready = true;
    }
  });
  const attackStarted = Date.now();
  try {
    await waitFor(
      () => ready,
      400_000,
      () => `the hostile process to open its connections: ${JSON.stringify(counters)}`,
    );
  } catch (error) {
    child.kill('SIGKILL');
    clearInterval(sampler);
    throw error;
  }
  const openedInMs = Date.now() - attackStarted;
  const atReady = { ...counters! };

  const latencies: number[] = [];
  const failures: string[] = [];
  const started = Date.now();
  for (let i = 0; i < SAMPLES; i++) {
    const t0 = performance.now();
    try {
      const app = await connect({ socketPath: daemon.socketPath, clientName: `newcomer-${i}`, connectTimeoutMs: 5_000, timeoutMs: 5_000 });
      try {
        const token = await app.getToken();
        latencies.push(performance.now() - t0);
        if (token.accessToken !== ACCESS_TOKEN) failures.push('wrong token');
      } finally {
        await app.close();
      }
    } catch (error) {
      failures.push(error instanceof BrokerError ? error.code : String(error));
    }
    await sleep(50);
  }
  const measuredMs = Date.now() - started;
  await sleep(1_500); // one more report from the hostile process
  clearInterval(sampler);
  maxRss = Math.max(maxRss, rssMiB(pid));
  const final = { ...counters! };
  child.kill('SIGKILL');
  hostile = undefined;

  const sorted = [...latencies].sort((a, b) => a - b);
  const p50 = sorted.length ? percentile(sorted, 50) : NaN;
  const p99 = sorted.length ? percentile(sorted, 99) : NaN;
  const logged = daemon.logs().slice(warningsBefore);
  const warnings = (text: string) => logged.filter((line) => String(line['msg']).includes(text)).length;
  const summary = [
    `hardening-exhaustion, ${label}: ${args.join(' ')}`,
    `  every connection opened once after ${(openedInMs / 1000).toFixed(1)} s; open then: ${atReady.silentOpen} silent, ${atReady.idleOpen} idle, ${atReady.parkedOpen} parked`,
    `  hostile process by the end: ${final.opened} connections opened, ${final.closedByDaemon} closed by the daemon, last words ${JSON.stringify(final.codes)}, ` +
      `connect errors ${JSON.stringify(final.connectErrors)}, ${final.requestsWritten} status requests written`,
    `  daemon: ${warnings('daemon-wide budget')} cut for the global budget, ${warnings('reads none of its answers')} write stalls, ` +
      `${warnings('every connection is busy')} refused (hello deadlines and idle connections closed for newcomers: see the last words above)`,
    `  newly connecting apps (connect + hello + token.get): ${latencies.length}/${SAMPLES} served over ${(measuredMs / 1000).toFixed(1)} s, ` +
      `p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${sorted.at(-1)?.toFixed(1)} ms; failures ${JSON.stringify(failures)}`,
    `  daemon VmRSS: ${rssBefore.toFixed(0)} MiB before, max ${maxRss.toFixed(0)} MiB during; still running: ${daemon.child.exitCode === null && daemon.child.signalCode === null}`,
  ].join('\n');
  console.log(summary);
  return { openedInMs, atReady, final, latencies, failures, p50, p99, rssBefore, maxRss, warnings, summary };
}

describe('one local client cannot exhaust the daemon', () => {
  it(`${SILENT} silent + ${PARKED} never-reading connections: the daemon stays up within ${RSS_LIMIT_MIB} MiB and new apps get a token (p99 < ${P99_MS} ms)`, async () => {
    // Held, not reopened: the daemon's own limits (hello deadline, write stall, budget) must clear them.
    const attack = await underAttack('silent + parked', { silent: SILENT, parked: PARKED, reconnectMs: -1, requests: 1000 });
    expect(daemon.child.exitCode).toBeNull();
    expect(daemon.child.signalCode).toBeNull();
    expect(attack.final.opened).toBeGreaterThanOrEqual(SILENT + PARKED); // the attack did happen
    expect(attack.final.requestsWritten).toBeGreaterThan(PARKED * 100);
    expect(attack.final.codes['BAD_REQUEST'] ?? 0).toBeGreaterThan(0); // silent ones were closed at the hello deadline, and told so
    // A few newcomers may time out (5 s) on an overloaded machine (8/200 on 2 shared cores at load 24); a
    // lockout fails them all. The figures are in docs/hardening-figures.md.
    expect(attack.failures.every((code) => code === 'TIMEOUT')).toBe(true);
    expect(attack.failures.length).toBeLessThanOrEqual(Math.floor(SAMPLES / 10));
    expect(attack.p99).toBeLessThan(P99_MS);
    expect(attack.maxRss).toBeLessThanOrEqual(RSS_LIMIT_MIB);
  }, 900_000);

  it(`${IDLE_AT_CAP} idle connections (hello, then nothing) at the connection cap: new apps close the least recently active one and get a token`, async () => {
    const attack = await underAttack('idle at the cap', { idle: IDLE_AT_CAP });
    expect(daemon.child.exitCode).toBeNull();
    expect(attack.failures).toEqual([]);
    // Each newcomer (and each hostile reconnect beyond the cap) made room by closing an idle connection,
    // which was told why before the close.
    expect(attack.final.codes['SERVER_BUSY'] ?? 0).toBeGreaterThanOrEqual(SAMPLES);
    expect(attack.p99).toBeLessThan(P99_MS);
    expect(attack.maxRss).toBeLessThanOrEqual(RSS_LIMIT_MIB);
  }, 900_000);
});
