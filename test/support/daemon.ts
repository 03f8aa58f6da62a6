/**
 * Runs the real daemon (the compiled CLI, as a user would) on a private temp socket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './temp-dir.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(ROOT, 'dist/daemon/cli/main.js');

if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does)`);

export { tempDir };

export interface DaemonOptions {
  readonly dir?: string;
  readonly socketPath?: string;
  /** Written to dir/config.json and passed with --config. */
  readonly config?: unknown;
  readonly env?: NodeJS.ProcessEnv;
  readonly logLevel?: string;
  readonly args?: readonly string[];
  /**
   * Resolve only once the daemon has also restored every profile from the keychain (it listens first);
   * false: as soon as it listens. @default true
   */
  readonly waitForRestore?: boolean;
}

export interface DaemonProcess {
  readonly dir: string;
  readonly socketPath: string;
  readonly configPath: string | undefined;
  readonly child: ChildProcess;
  /** Everything the daemon wrote to stdout and stderr so far. */
  output(): string;
  /** Parsed JSON log lines. */
  logs(): Array<Record<string, unknown>>;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startDaemon(options: DaemonOptions = {}): Promise<DaemonProcess> {
  const dir = options.dir ?? tempDir();
  const socketPath = options.socketPath ?? path.join(dir, 'run', 'broker.sock');
  let configPath: string | undefined;
  if (options.config !== undefined) {
    configPath = path.join(dir, 'config.json');
    fs.writeFileSync(configPath, JSON.stringify(options.config, null, 2));
  }
  const args = [CLI, 'daemon', '--socket', socketPath, '--log-level', options.logLevel ?? 'debug'];
  if (configPath) args.push('--config', configPath);
  args.push(...(options.args ?? []));
  const child = spawn(process.execPath, args, {
    env: { ...process.env, TOKENBROKER_CONFIG: '', XDG_CONFIG_HOME: path.join(dir, 'xdg-config'), ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const daemon: DaemonProcess = {
    dir,
    socketPath,
    configPath,
    child,
    output: () => output,
    logs: () =>
      output
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  await Promise.race([
    waitFor(
      () => output.includes('tokenbroker daemon listening') && (options.waitForRestore === false || output.includes('"msg":"profiles restored"')),
      15_000,
      () => `daemon did not start:\n${output}`,
    ),
    exited.then((code) => {
      throw new Error(`daemon exited with ${code} before listening:\n${output}`);
    }),
  ]);
  return daemon;
}

/** Polls `condition` every 20 ms until true or `timeoutMs`. */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000, message: () => string = () => 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${message()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `tokenbroker <args>` to completion. */
export function runCli(args: readonly string[], options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return runCommand([process.execPath, CLI, ...args], {
    env: { ...process.env, ...options.env },
    ...(options.input === undefined ? {} : { input: options.input }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    label: `tokenbroker ${args.join(' ')}`,
  });
}

/** Runs a command to completion with exactly `env`, collecting its output; rejects after `timeoutMs`. */
export function runCommand(
  argv: readonly string[],
  options: { env: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number; label?: string },
): Promise<CliResult> {
  const [file, ...args] = argv;
  return new Promise((resolve, reject) => {
    const child = spawn(file!, args, { env: options.env, ...(options.cwd ? { cwd: options.cwd } : {}), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${options.label ?? argv.join(' ')} timed out\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}
