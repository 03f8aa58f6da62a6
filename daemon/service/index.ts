/**
 * `tokenbroker service install | uninstall | status | logs`: the broker as a user service that starts
 * at login and restarts after a crash — a systemd user unit on Linux, a launchd agent on macOS. Windows
 * gets the equivalent scheduled task printed (not automated yet).
 *
 * Install also registers the URL-scheme handler of every custom-scheme profile; uninstall removes both.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BrokerError } from '../../proto/index.js';
import { defaultConfigPath, loadConfig } from '../config.js';
import { registerScheme, schemeOf, unregisterScheme } from '../scheme/index.js';
import { execCommand, removeStep, runStep, writeFileStep, type ActionOptions, type ActionReport } from '../system/run.js';
import { packageRoot } from '../version.js';
import { invokedNodePath } from '../system/node-path.js';

export type ServiceManager = 'systemd' | 'launchd' | 'schtasks';

export interface ServiceOptions {
  /** @default the node that runs this install, by the path it was invoked through (see node-path.ts) */
  readonly nodePath?: string;
  /** @default this package's compiled CLI */
  readonly cliPath?: string;
  readonly dryRun?: boolean;
  /** HOME, XDG dirs and the PATH commands are looked up on. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** @default process.platform (another platform implies a dry run) */
  readonly platform?: NodeJS.Platform;
  /** Where to find the profiles whose schemes to (un)register. @default the default config path */
  readonly configPath?: string;
}

export interface ServiceReport extends ActionReport {
  readonly action: 'install' | 'uninstall';
  readonly manager: ServiceManager;
  readonly unitPath: string;
  readonly schemes: string[];
}

export interface ServiceStatus {
  readonly supported: boolean;
  readonly installed: boolean;
  readonly running: boolean;
  readonly manager: ServiceManager | 'none';
  readonly unitPath?: string;
  readonly details: string;
}

export const SYSTEMD_UNIT = 'tokenbroker.service';
export const LAUNCHD_LABEL = 'dev.tokenbroker.daemon';

interface Resolved extends ActionOptions {
  readonly platform: NodeJS.Platform;
  readonly home: string;
  readonly nodePath: string;
  readonly cliPath: string;
  readonly configPath: string;
  readonly manager: ServiceManager;
  readonly unitPath: string;
}

function resolve(options: ServiceOptions): Resolved {
  const env = options.env ?? process.env;
  const platform = options.platform ?? process.platform;
  const home = env['HOME'] || os.homedir();
  const manager: ServiceManager = platform === 'darwin' ? 'launchd' : platform === 'win32' ? 'schtasks' : 'systemd';
  const configHome = env['XDG_CONFIG_HOME'] || path.join(home, '.config');
  const unitPath =
    manager === 'launchd'
      ? path.join(home, 'Library', 'LaunchAgents', `${LAUNCHD_LABEL}.plist`)
      : manager === 'systemd'
        ? path.join(configHome, 'systemd', 'user', SYSTEMD_UNIT)
        : 'tokenbroker (Task Scheduler)';
  return {
    env,
    platform,
    home,
    dryRun: options.dryRun === true || platform !== process.platform,
    nodePath: options.nodePath ?? invokedNodePath(env),
    cliPath: options.cliPath ?? path.join(packageRoot(), 'dist', 'daemon', 'cli', 'main.js'),
    configPath: options.configPath ?? env['TOKENBROKER_CONFIG'] ?? defaultConfigPath(env),
    manager,
    unitPath,
  };
}

// ---- rendering -----------------------------------------------------------------------------------

function template(name: string): string {
  return fs.readFileSync(path.join(packageRoot(), name), 'utf8');
}

/** systemd's ExecStart quoting: a path with spaces or specials is double-quoted; `%` is doubled (systemd.unit "Specifiers"). */
function systemdArg(arg: string): string {
  const escaped = arg.replace(/%/g, '%%');
  return /^[A-Za-z0-9_@%./:+-]+$/.test(escaped) ? escaped : `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function renderSystemdUnit(nodePath: string, cliPath: string): string {
  return template('systemd/tokenbroker.service').replace('@NODE@', systemdArg(nodePath)).replace('@CLI@', systemdArg(cliPath));
}

export function renderLaunchdPlist(nodePath: string, cliPath: string, home: string): string {
  return template(`launchd/${LAUNCHD_LABEL}.plist`)
    .replace('@LABEL@', LAUNCHD_LABEL)
    .replace('@NODE@', xml(nodePath))
    .replace('@CLI@', xml(cliPath))
    .replaceAll('@LOGDIR@', xml(path.join(home, 'Library', 'Logs', 'tokenbroker')));
}

/** Windows: a task that runs the daemon at logon (not automated yet; printed for the user). */
export function windowsTaskCommands(nodePath: string, cliPath: string): string[][] {
  return [
    ['schtasks', '/Create', '/F', '/SC', 'ONLOGON', '/RL', 'LIMITED', '/TN', 'tokenbroker', '/TR', `"${nodePath}" "${cliPath}" daemon`],
    ['schtasks', '/Run', '/TN', 'tokenbroker'],
  ];
}

// ---- install / uninstall -------------------------------------------------------------------------

/** Custom schemes of the configured profiles (loopback profiles need none). An unreadable config gives none. */
function configuredSchemes(configPath: string, report: ActionReport): string[] {
  let profiles;
  try {
    profiles = loadConfig(configPath, { allowMissing: true }).profiles;
  } catch (error) {
    report.notes.push(`The config could not be read (${(error as Error).message}); no URL-scheme handlers were changed.`);
    return [];
  }
  const schemes = new Set<string>();
  for (const profile of profiles.values()) {
    if (profile.redirectUri === 'loopback' || /^https?:/.test(profile.redirectUri)) continue;
    schemes.add(schemeOf(profile.redirectUri));
  }
  return [...schemes];
}

function emptyReport(action: ServiceReport['action'], r: Resolved): ServiceReport {
  return { action, manager: r.manager, unitPath: r.unitPath, schemes: [], dryRun: r.dryRun, filesWritten: [], filesRemoved: [], commands: [], notes: [] };
}

function merge(into: ServiceReport, from: ActionReport): void {
  into.filesWritten.push(...from.filesWritten);
  into.filesRemoved.push(...from.filesRemoved);
  into.commands.push(...from.commands);
  into.notes.push(...from.notes);
}

/** Installs and starts the service; safe to run again (it rewrites the unit and restarts). */
export async function installService(options: ServiceOptions = {}): Promise<ServiceReport> {
  const r = resolve(options);
  const report = emptyReport('install', r);
  if (!path.isAbsolute(r.nodePath) || !path.isAbsolute(r.cliPath)) {
    throw new BrokerError('BAD_REQUEST', 'the node and CLI paths of the service must be absolute', { field: 'nodePath' });
  }
  if (r.manager === 'systemd') {
    await requireServiceManager(r, ['systemctl', '--user', 'show', '--property=Version'], SYSTEMD_UNREACHABLE);
    const undo = { disable: ['systemctl', '--user', 'disable', SYSTEMD_UNIT], reload: ['systemctl', '--user', 'daemon-reload'] };
    await withRollback(r, undo, async () => {
      writeFileStep(report, r, r.unitPath, renderSystemdUnit(r.nodePath, r.cliPath));
      await managerStep(report, r, ['systemctl', '--user', 'daemon-reload'], SYSTEMD_HINT);
      await managerStep(report, r, ['systemctl', '--user', 'enable', SYSTEMD_UNIT], SYSTEMD_HINT);
      // restart, not start: a second install picks up the new unit and binary.
      await managerStep(report, r, ['systemctl', '--user', 'restart', SYSTEMD_UNIT], SYSTEMD_HINT);
    });
  } else if (r.manager === 'launchd') {
    const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
    await requireServiceManager(r, ['launchctl', 'print', `gui/${uid}`], LAUNCHD_UNREACHABLE);
    await withRollback(r, {}, async () => {
      writeFileStep(report, r, r.unitPath, renderLaunchdPlist(r.nodePath, r.cliPath, r.home));
      if (!r.dryRun) fs.mkdirSync(path.join(r.home, 'Library', 'Logs', 'tokenbroker'), { recursive: true });
      // bootout first so that a second install reloads the new plist (it fails harmlessly when not loaded).
      await runStep(report, r, ['launchctl', 'bootout', `gui/${uid}/${LAUNCHD_LABEL}`], { optional: true });
      await managerStep(report, r, ['launchctl', 'bootstrap', `gui/${uid}`, r.unitPath], 'is this a GUI login session?');
    });
  } else {
    for (const argv of windowsTaskCommands(r.nodePath, r.cliPath)) report.commands.push({ argv, ran: false });
    report.notes.push('Windows is not automated yet: run the commands above in a terminal (see the README, "Service").');
  }
  for (const scheme of configuredSchemes(r.configPath, report)) {
    merge(report, await registerScheme(scheme, { cliPath: r.cliPath, nodePath: r.nodePath, dryRun: r.dryRun, env: r.env, platform: r.platform }));
    report.schemes.push(scheme);
  }
  return report;
}

const SYSTEMD_UNREACHABLE =
  'No systemd user manager answers. Log in to a desktop or systemd-logind session (over SSH: "loginctl enable-linger $USER", then log in again), or run "tokenbroker daemon" from your session instead. Nothing was installed.';
const LAUNCHD_UNREACHABLE =
  'launchd has no GUI domain for this user: log in to the desktop, or run "tokenbroker daemon" from your session instead. Nothing was installed.';

/** Before anything is written: the service manager must answer (no user bus, no systemctl … fail here). */
async function requireServiceManager(r: Resolved, probe: readonly string[], hint: string): Promise<void> {
  if (r.dryRun) return;
  const result = await execCommand(probe, r.env, 10_000);
  if (result.exitCode === 0) return;
  const said = result.missing ? `${probe[0]} is not installed` : `"${probe.join(' ')}" failed: ${(result.stderr.trim().split('\n')[0] ?? '').slice(0, 300)}`;
  throw new BrokerError('SERVICE_MANAGER_ERROR', `${said}. ${hint}`);
}

/** A required step of the service manager; its failure is SERVICE_MANAGER_ERROR, not a bug. */
async function managerStep(report: ServiceReport, r: Resolved, argv: readonly string[], hint: string): Promise<void> {
  try {
    await runStep(report, r, argv, { hint });
  } catch (error) {
    if (error instanceof BrokerError) throw new BrokerError('SERVICE_MANAGER_ERROR', error.message, { cause: error });
    throw error;
  }
}

/**
 * Runs the install steps; if one fails, puts the unit file back as it was (the previous install's, or
 * none — then `disable` first, so no enablement link is left pointing at it), tells the manager
 * (`reload`), both best effort, and rethrows, saying so.
 */
async function withRollback(
  r: Resolved,
  undo: { readonly disable?: readonly string[]; readonly reload?: readonly string[] },
  steps: () => Promise<void>,
): Promise<void> {
  const previous = r.dryRun || !fs.existsSync(r.unitPath) ? undefined : fs.readFileSync(r.unitPath, 'utf8');
  try {
    await steps();
  } catch (error) {
    if (r.dryRun) throw error;
    if (previous === undefined) {
      if (undo.disable && fs.existsSync(r.unitPath)) await execCommand(undo.disable, r.env, 10_000);
      fs.rmSync(r.unitPath, { force: true });
    } else {
      fs.writeFileSync(r.unitPath, previous);
    }
    if (undo.reload) await execCommand(undo.reload, r.env, 10_000);
    if (error instanceof BrokerError) {
      const undone = previous === undefined ? `${r.unitPath} was removed again.` : `${r.unitPath} was restored to the previous install.`;
      throw new BrokerError(error.code, `${error.message} ${undone}`, { cause: error });
    }
    throw error;
  }
}

/** Stops and removes the service and the URL-scheme handlers install registered. */
export async function uninstallService(options: ServiceOptions = {}): Promise<ServiceReport> {
  const r = resolve(options);
  const report = emptyReport('uninstall', r);
  if (r.manager === 'systemd') {
    if (fs.existsSync(r.unitPath) || r.dryRun) {
      await runStep(report, r, ['systemctl', '--user', 'disable', '--now', SYSTEMD_UNIT], { optional: true });
    }
    removeStep(report, r, r.unitPath);
    await runStep(report, r, ['systemctl', '--user', 'daemon-reload'], { optional: true });
  } else if (r.manager === 'launchd') {
    const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
    await runStep(report, r, ['launchctl', 'bootout', `gui/${uid}/${LAUNCHD_LABEL}`], { optional: true });
    removeStep(report, r, r.unitPath);
  } else {
    report.commands.push({ argv: ['schtasks', '/Delete', '/F', '/TN', 'tokenbroker'], ran: false });
    report.notes.push('Windows is not automated yet: run the command above in a terminal.');
  }
  for (const scheme of configuredSchemes(r.configPath, report)) {
    merge(report, await unregisterScheme(scheme, { dryRun: r.dryRun, env: r.env, platform: r.platform }));
    report.schemes.push(scheme);
  }
  return report;
}

const SYSTEMD_HINT = 'Is a systemd user session running ("systemctl --user status")? Without one, run "tokenbroker daemon" from your session instead.';

// ---- status / logs -------------------------------------------------------------------------------

export async function serviceStatus(options: ServiceOptions = {}): Promise<ServiceStatus> {
  const r = resolve(options);
  const installed = r.manager !== 'schtasks' && fs.existsSync(r.unitPath);
  if (r.manager === 'systemd') {
    const active = await execCommand(['systemctl', '--user', 'is-active', SYSTEMD_UNIT], r.env, 5_000);
    const state = active.missing ? 'systemctl not found' : active.stdout.trim() || active.stderr.trim();
    return {
      supported: !active.missing,
      installed,
      running: active.exitCode === 0 && state === 'active',
      manager: 'systemd',
      unitPath: r.unitPath,
      details: `${SYSTEMD_UNIT}: ${installed ? 'installed' : 'not installed'}, ${state}`,
    };
  }
  if (r.manager === 'launchd') {
    const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
    const print = await execCommand(['launchctl', 'print', `gui/${uid}/${LAUNCHD_LABEL}`], r.env, 5_000);
    const running = print.exitCode === 0 && /state = running/.test(print.stdout);
    return {
      supported: !print.missing,
      installed,
      running,
      manager: 'launchd',
      unitPath: r.unitPath,
      details: `${LAUNCHD_LABEL}: ${installed ? 'installed' : 'not installed'}, ${running ? 'running' : 'not running'}`,
    };
  }
  return { supported: false, installed: false, running: false, manager: 'none', details: 'Windows: service management is not automated yet (see the README)' };
}

/** The command that shows the service's log. */
export function logsCommand(options: ServiceOptions & { readonly follow?: boolean; readonly lines?: number } = {}): string[] {
  const r = resolve(options);
  const lines = String(options.lines ?? 100);
  if (r.manager === 'launchd') {
    return ['tail', '-n', lines, ...(options.follow ? ['-f'] : []), path.join(r.home, 'Library', 'Logs', 'tokenbroker', 'tokenbroker.log')];
  }
  if (r.manager === 'systemd') return ['journalctl', '--user', '-u', SYSTEMD_UNIT, '-n', lines, '--no-pager', ...(options.follow ? ['-f'] : [])];
  throw new BrokerError('BAD_REQUEST', 'service logs: not available on Windows yet');
}

// ---- start on demand -----------------------------------------------------------------------------

/**
 * The command that starts the installed service now, or undefined when no service is installed here
 * (no unit file / agent plist, or Windows). `token`, `login` and `status` run it when no daemon listens.
 */
export function startCommand(options: ServiceOptions = {}): string[] | undefined {
  const r = resolve(options);
  if (r.manager === 'schtasks' || !fs.existsSync(r.unitPath)) return undefined;
  if (r.manager === 'systemd') return ['systemctl', '--user', 'start', SYSTEMD_UNIT];
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  return ['launchctl', 'kickstart', `gui/${uid}/${LAUNCHD_LABEL}`];
}
