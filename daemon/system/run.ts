/**
 * Changes to the user's system (scheme handlers, service units), each recorded in a report and skipped
 * in a dry run: commands run with execFile (no shell; looked up on the PATH of `options.env`, so tests
 * can put fakes first), and files written atomically.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BrokerError } from '../../proto/index.js';

/** One command of a report: what ran (or would run in a dry run) and how it went. */
export interface CommandRecord {
  readonly argv: readonly string[];
  /** False in a dry run, or when the step was skipped (see `skipped`). */
  readonly ran: boolean;
  readonly exitCode?: number;
  /** stdout and stderr of the command, trimmed. */
  readonly output?: string;
  /** Why the command was not run although this is not a dry run (e.g. "not installed"). */
  readonly skipped?: string;
}

export interface FileWrite {
  readonly path: string;
  readonly contents: string;
}

/** What an action did, or would do in a dry run (for `--dry-run` and `--json`). */
export interface ActionReport {
  readonly dryRun: boolean;
  readonly filesWritten: FileWrite[];
  readonly filesRemoved: string[];
  readonly commands: CommandRecord[];
  /** Caveats a person should read. */
  readonly notes: string[];
}

export interface ActionOptions {
  readonly dryRun: boolean;
  readonly env: NodeJS.ProcessEnv;
}

export interface CommandResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  /** The program was not found. */
  readonly missing: boolean;
}

/** Runs a command without a shell. Never throws: a missing program is `missing`, a failure an exit code. */
export function execCommand(argv: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<CommandResult> {
  const [file, ...args] = argv;
  if (file === undefined) throw new TypeError('execCommand: empty argv');
  return new Promise((resolve) => {
    execFile(file, args, { env, timeout: timeoutMs, windowsHide: true, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error === null) return resolve({ exitCode: 0, stdout, stderr, missing: false });
      const code = (error as NodeJS.ErrnoException).code;
      const exitCode = typeof code === 'number' ? code : 1;
      resolve({ exitCode, stdout, stderr: stderr || error.message, missing: code === 'ENOENT' });
    });
  });
}

/**
 * Runs a step of a registration and records it. A required step that fails throws with the command,
 * its exit code, its output and `hint`; an optional one is recorded and noted.
 */
export async function runStep(
  report: ActionReport,
  options: ActionOptions,
  argv: readonly string[],
  step: { readonly optional?: boolean; readonly hint?: string } = {},
): Promise<CommandResult | undefined> {
  if (options.dryRun) {
    report.commands.push({ argv, ran: false });
    return undefined;
  }
  const result = await execCommand(argv, options.env);
  const output = `${result.stdout}${result.stderr}`.trim().slice(0, 2000);
  const record: CommandRecord = result.missing
    ? { argv, ran: false, skipped: 'not installed' }
    : { argv, ran: true, exitCode: result.exitCode, ...(output === '' ? {} : { output }) };
  report.commands.push(record);
  if (result.exitCode === 0) return result;
  const what = result.missing
    ? `${argv[0]} is not installed`
    : `"${formatCommand(argv)}" failed (exit ${result.exitCode})${output === '' ? '' : `: ${output}`}`;
  if (step.optional) {
    report.notes.push(`Skipped: ${what}.`);
    return result;
  }
  throw new BrokerError('INTERNAL', `${what}.${step.hint === undefined ? '' : ` ${step.hint}`}`);
}

/** Writes a file atomically (temp file + rename), recorded in the report; nothing in a dry run. */
export function writeFileStep(report: ActionReport, options: ActionOptions, file: string, contents: string, mode = 0o644): void {
  report.filesWritten.push({ path: file, contents });
  if (options.dryRun) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temp, contents, { mode });
  fs.renameSync(temp, file);
}

/** Removes a file or directory if it exists, recorded in the report; nothing in a dry run. */
export function removeStep(report: ActionReport, options: ActionOptions, target: string): void {
  if (!fs.existsSync(target)) return;
  report.filesRemoved.push(target);
  if (!options.dryRun) fs.rmSync(target, { recursive: true, force: true });
}

/** The first executable called `name` on `env.PATH`. */
export function findExecutable(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env['PATH'] ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** A command line for people to read (POSIX shell quoting). */
export function formatCommand(argv: readonly string[]): string {
  return argv.map((arg) => (/^[A-Za-z0-9_\-./:=@%+,]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`)).join(' ');
}
