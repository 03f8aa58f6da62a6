/**
 * The parts every benchmark shares: the test IdP (oidc-provider), one headless browser user, and real
 * tokenbroker daemons signed in through a real browser login.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launchBrowserUser, type BrowserUser } from '../../../test/support/browser-user.js';
import { idpProfile, startBroker, type BrokerHarness } from '../../../test/support/broker.js';
import { CLI, ROOT, runCli } from '../../../test/support/daemon.js';
import { startTestIdp, type TestIdp } from '../../../test/support/idp.js';

export { CLI, ROOT, idpProfile, runCli };
export type { BrokerHarness, BrowserUser, TestIdp };

export interface BenchEnv {
  readonly idp: TestIdp;
  readonly user: BrowserUser;
  close(): Promise<void>;
}

export async function startEnv(): Promise<BenchEnv> {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
  const idp = await startTestIdp({ accessTokenTtl: 3600 });
  const user = await launchBrowserUser();
  return {
    idp,
    user,
    async close() {
      await user.close().catch(() => undefined);
      await idp.close().catch(() => undefined);
    },
  };
}

/** Starts a real daemon (log level info, as shipped) and signs its profiles in through the browser. */
export async function signedInBroker(
  env: BenchEnv,
  config: { profiles: Record<string, Record<string, unknown>>; defaultProfile?: string },
  options: { readonly login?: readonly string[]; readonly keychainService?: string } = {},
): Promise<BrokerHarness> {
  const harness = await startBroker(config, {
    logLevel: 'info',
    ...(options.keychainService ? { keychainService: options.keychainService } : {}),
  });
  try {
    for (const profile of options.login ?? Object.keys(config.profiles)) await login(env, harness, profile);
  } catch (error) {
    await harness.stop();
    throw error;
  }
  return harness;
}

/**
 * A daemon that signs in without a browser: it restores the sessions stored under `keychainService`
 * (entries written by an earlier real login, or copied from one), as after a reboot.
 */
export async function startRestoredBroker(
  keychainService: string,
  config: { profiles: Record<string, Record<string, unknown>>; defaultProfile?: string },
  options: { readonly startTimeoutMs?: number; readonly env?: NodeJS.ProcessEnv } = {},
): Promise<BrokerHarness> {
  if ((options.startTimeoutMs ?? 0) <= 15_000) return startBroker(config, { logLevel: 'info', keychainService, ...(options.env ? { env: options.env } : {}) });
  return startSlowBroker(keychainService, config, options.startTimeoutMs!);
}

/**
 * Like startBroker, for a daemon whose start-up takes longer than the harness's 15 s (1000 profiles
 * restored one by one from the keychain): the same real daemon, started by hand.
 */
async function startSlowBroker(keychainService: string, config: unknown, timeoutMs: number): Promise<BrokerHarness> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tb-bench-'));
  fs.chmodSync(dir, 0o700);
  const socketPath = path.join(dir, 'run', 'broker.sock');
  const configPath = path.join(dir, 'config.json');
  fs.writeFileSync(configPath, JSON.stringify(config));
  const child = spawn(process.execPath, [CLI, 'daemon', '--socket', socketPath, '--config', configPath, '--log-level', 'info'], {
    env: { ...process.env, TOKENBROKER_CONFIG: '', TOKENBROKER_KEYCHAIN_SERVICE: keychainService, XDG_CONFIG_HOME: path.join(dir, 'xdg-config') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (output += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (output += c));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + timeoutMs;
  while (!output.includes('tokenbroker daemon listening')) {
    if (child.exitCode !== null) throw new Error(`daemon exited with ${child.exitCode}:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`daemon did not start within ${timeoutMs} ms:\n${output.slice(-2000)}`);
    }
    await delay(50);
  }
  const stop = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  const daemon = {
    dir,
    socketPath,
    configPath,
    child,
    output: () => output,
    logs: () =>
      output
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    exited,
    stop,
  };
  return {
    daemon,
    dir,
    keychainService,
    env: { ...process.env, TOKENBROKER_SOCKET: socketPath },
    nextBrowserUrl: () => Promise.reject(new Error('no browser for this daemon')),
    browserUrlsOpened: () => 0,
    browserUrlsPending: () => 0,
    restart: () => Promise.reject(new Error('not supported')),
    stop: async () => {
      await stop('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `tokenbroker login` → headless Chromium signs in → `tokenbroker callback <url>`, as a user would. */
export async function login(env: BenchEnv, harness: BrokerHarness, profile: string): Promise<void> {
  const running = runCli(['login', '--profile', profile], { env: harness.env, timeoutMs: 60_000 });
  const url = await harness.nextBrowserUrl(30_000);
  const { redirectUrl } = await env.user.signIn(url, { login: 'bench' });
  const callback = await runCli(['callback', redirectUrl], { env: harness.env });
  if (callback.code !== 0) throw new Error(`tokenbroker callback failed (${callback.code}): ${callback.stderr}`);
  const done = await running;
  if (done.code !== 0) throw new Error(`tokenbroker login failed (${done.code}): ${done.stderr}`);
}

/** Resident set size of a process in bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

export const BENCH_DIR = path.join(ROOT, 'scripts', 'bench');
export const RESULTS_DIR = path.join(ROOT, 'bench', 'results');

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
