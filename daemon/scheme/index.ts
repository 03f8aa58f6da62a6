/**
 * Registering the OS handler for the custom redirect scheme, so that a redirect to
 * `com.example.broker:/callback?code=…` runs `tokenbroker callback <url>` (RFC 8252 §7.1,
 * "Private-Use URI Scheme Redirection"). Used by `tokenbroker scheme register|unregister|status`.
 *
 * Each call returns a report of the files written and commands run (or, with `dryRun` or for another
 * platform than this one, that would be): the CLI prints it for `--dry-run` and `--json`.
 *
 * Linux/BSD: a desktop entry + `xdg-mime default` (tested for real). macOS: an AppleScript applet
 * bundle + `lsregister`. Windows: HKCU\Software\Classes via `reg`. (macOS and Windows: generated and
 * checked as text only, see their files.)
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.1
 */
import os from 'node:os';
import path from 'node:path';
import { BrokerError } from '../../proto/index.js';
import { invokedNodePath } from '../system/node-path.js';
import { registerLinux, statusLinux, unregisterLinux } from './linux.js';
import { registerMacos, statusMacos, unregisterMacos } from './macos.js';
import type { ResolvedSchemeOptions, SchemeOptions, SchemeReport, SchemeStatus } from './types.js';
import { registerWindows, statusWindows, unregisterWindows } from './windows.js';

export type { CommandRecord, FileWrite, SchemeOptions, SchemeReport, SchemeStatus } from './types.js';
export { formatCommand } from '../system/run.js';

/** RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
const SCHEME_PATTERN = /^[a-z][a-z0-9+.-]*$/;

/**
 * Checks a private-use scheme and returns it in lower case (schemes are case-insensitive,
 * RFC 3986 §3.1). RFC 8252 §7.1: it must be a reverse domain name the app controls, so it contains
 * a period; and it must not be one of the schemes browsers handle themselves.
 */
export function validateScheme(scheme: string, field = 'scheme'): string {
  const lower = scheme.toLowerCase();
  if (!SCHEME_PATTERN.test(lower) || lower.length > 128) {
    throw new BrokerError('BAD_REQUEST', `${field}: "${scheme}" is not a URI scheme (letters, digits, "+", "-", "."; starting with a letter)`, { field });
  }
  if (['http', 'https', 'file', 'about', 'data', 'javascript', 'mailto'].includes(lower)) {
    throw new BrokerError('BAD_REQUEST', `${field}: "${scheme}" is not a private-use scheme; use a reverse domain name such as com.example.broker`, { field });
  }
  if (!lower.includes('.')) {
    throw new BrokerError('BAD_REQUEST', `${field}: "${scheme}" should be a reverse domain name you control, such as com.example.broker (RFC 8252 §7.1)`, {
      field,
    });
  }
  return lower;
}

/** The scheme of a custom-scheme redirect URI: 'com.example.broker:/callback' → 'com.example.broker'. */
export function schemeOf(redirectUri: string): string {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(redirectUri);
  if (match === null) {
    throw new BrokerError('BAD_REQUEST', `redirectUri: "${redirectUri}" has no URI scheme (expected e.g. com.example.broker:/callback)`, {
      field: 'redirectUri',
    });
  }
  const scheme = match[1]!.toLowerCase();
  if (scheme === 'http' || scheme === 'https') {
    throw new BrokerError('BAD_REQUEST', 'redirectUri: a loopback (http) redirect needs no scheme handler; only custom-scheme redirects do', {
      field: 'redirectUri',
    });
  }
  return validateScheme(scheme, 'redirectUri');
}

function resolve(options: SchemeOptions, needCommand: boolean): ResolvedSchemeOptions {
  const env = options.env ?? process.env;
  const platform = options.platform ?? process.platform;
  const home = (platform === 'win32' ? env['USERPROFILE'] : env['HOME']) || os.homedir();
  let command: readonly string[] = [];
  if (options.command !== undefined) {
    if (options.command.length === 0 || !path.isAbsolute(options.command[0]!)) {
      throw new BrokerError('BAD_REQUEST', 'command: must start with an absolute path to the handler program', { field: 'command' });
    }
    command = [...options.command];
  } else if (needCommand || options.cliPath !== undefined) {
    const nodePath = options.nodePath ?? invokedNodePath(env);
    if (options.cliPath === undefined || !isAbsolute(options.cliPath, platform)) {
      throw new BrokerError('BAD_REQUEST', 'cliPath: the absolute path of the tokenbroker CLI script is needed to register the handler', { field: 'cliPath' });
    }
    if (!isAbsolute(nodePath, platform)) {
      throw new BrokerError('BAD_REQUEST', 'nodePath: must be the absolute path of the Node.js binary', { field: 'nodePath' });
    }
    command = [nodePath, options.cliPath, 'callback'];
  }
  return { command, dryRun: options.dryRun === true || platform !== process.platform, platform, env, home };
}

function isAbsolute(file: string, platform: NodeJS.Platform): boolean {
  return platform === 'win32' ? path.win32.isAbsolute(file) : path.posix.isAbsolute(file);
}

function withPlatformNote(report: SchemeReport, options: SchemeOptions): SchemeReport {
  if (report.platform !== process.platform && options.dryRun !== true) {
    report.notes.unshift(`This is ${process.platform}, not ${report.platform}: nothing was changed; this is what would be done there.`);
  }
  return report;
}

/** Makes this tokenbroker the OS handler of `scheme`. */
export async function registerScheme(scheme: string, options: SchemeOptions): Promise<SchemeReport> {
  const valid = validateScheme(scheme);
  const resolved = resolve(options, true);
  const report =
    resolved.platform === 'darwin'
      ? await registerMacos(valid, resolved)
      : resolved.platform === 'win32'
        ? await registerWindows(valid, resolved)
        : await registerLinux(valid, resolved);
  return withPlatformNote(report, options);
}

/** Removes what `registerScheme` installed, and only that. */
export async function unregisterScheme(scheme: string, options: SchemeOptions = {}): Promise<SchemeReport> {
  const valid = validateScheme(scheme);
  const resolved = resolve(options, false);
  const report =
    resolved.platform === 'darwin'
      ? await unregisterMacos(valid, resolved)
      : resolved.platform === 'win32'
        ? await unregisterWindows(valid, resolved)
        : await unregisterLinux(valid, resolved);
  return withPlatformNote(report, options);
}

/** Is this tokenbroker the handler the OS uses for `scheme`? */
export async function schemeStatus(scheme: string, options: SchemeOptions = {}): Promise<SchemeStatus> {
  const valid = validateScheme(scheme);
  const resolved = resolve(options, false);
  if (resolved.platform === 'darwin') return statusMacos(valid, resolved);
  if (resolved.platform === 'win32') return statusWindows(valid, resolved);
  return statusLinux(valid, resolved);
}
