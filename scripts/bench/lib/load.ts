/** Spawns load-client.mjs (one process, N clients) and returns its measurement. */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BENCH_DIR, ROOT, delay } from './env.js';

export type Target = 'broker' | 'broker-raw' | 'floor' | 'agent';

export interface LoadConfig {
  readonly target: Target;
  readonly socketPath: string;
  readonly clients: number;
  readonly warmupMs?: number;
  readonly durationMs?: number;
  /** Stop after this many recorded requests instead of after durationMs. */
  readonly requests?: number;
  readonly perRequest?: boolean;
  readonly account?: string;
  /** Count answers carrying any other token as wrong. */
  readonly expectToken?: string;
  /** Extra NODE_OPTIONS for the load process (profiling). */
  readonly nodeOptions?: string;
  /** The server's pid, to report its CPU time per request. */
  readonly serverPid?: number;
  /** Client i asks for profile p{i % profiles} (p0000…); 0 = the default profile. */
  readonly profiles?: number;
  /** file: URL of another build of the client library (A/B comparisons). @default this repo's dist */
  readonly distClient?: string;
}

export interface LoadResult {
  readonly target: Target;
  readonly clients: number;
  readonly perRequest: boolean;
  readonly completed: number;
  readonly elapsedMs: number;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly errors: number;
  readonly connectErrors: number;
  readonly wrongToken: number;
  readonly errorSamples: string[];
  /** CPU time the load process spent per recorded request (µs). */
  readonly clientCpuUsPerRequest: number;
  /** CPU time the server process spent per recorded request (µs), when `serverPid` was given. */
  readonly serverCpuUsPerRequest: number | null;
}

const LOAD_CLIENT = path.join(BENCH_DIR, 'load-client.mjs');
const DIST_CLIENT = pathToFileURL(path.join(ROOT, 'dist', 'client', 'index.js')).href;

export function runLoad(config: LoadConfig): Promise<LoadResult> {
  const { nodeOptions, ...rest } = config;
  const args = JSON.stringify({ distClient: DIST_CLIENT, ...rest });
  const limitMs = (config.requests ? 600_000 : (config.durationMs ?? 2000)) + 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [LOAD_CLIENT, args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(nodeOptions ? { env: { ...process.env, NODE_OPTIONS: nodeOptions } } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as LoadResult);
      } catch {
        reject(new Error(`load client (${config.target}, ${config.clients} clients) exited ${code}: ${stderr || stdout}`));
      }
    });
  });
}

export interface FloorServer {
  readonly socketPath: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Starts floor-server.mjs answering with `result` (the same payload the daemon sends). */
export async function startFloor(result: unknown): Promise<FloorServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tb-floor-'));
  fs.chmodSync(dir, 0o700);
  const socketPath = path.join(dir, 'floor.sock');
  const child: ChildProcess = spawn(process.execPath, [path.join(BENCH_DIR, 'floor-server.mjs'), socketPath], {
    env: { ...process.env, FLOOR_RESULT: JSON.stringify(result) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('floor server did not start')), 10_000);
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      if (c.includes('listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return {
    socketPath,
    pid: child.pid!,
    async stop() {
      child.kill('SIGTERM');
      await Promise.race([exited, delay(3000)]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
