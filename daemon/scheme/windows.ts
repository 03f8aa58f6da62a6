/**
 * Windows: a per-user URL protocol under HKCU\Software\Classes (no administrator rights needed),
 * RFC 8252 §7.1. Windows starts the `shell\open\command` with the URL in place of "%1".
 *
 *   HKCU\Software\Classes\<scheme>                    (Default) = "URL:tokenbroker (<scheme>)"
 *                                                      "URL Protocol" = ""  (marks it a URL scheme)
 *   HKCU\Software\Classes\<scheme>\shell\open\command (Default) = "<node.exe>" "<cli>" callback "%1"
 *
 * Written with `reg add` and removed with `reg delete`, run through execFile (no cmd.exe, so "%1"
 * and the paths are never expanded by a shell); run only on win32.
 *
 * UNTESTED on Windows by this project (CI is Linux): the commands are checked as text only. To verify
 * on Windows: that the (Default) value arrives with its quotes intact after Node's argument quoting,
 * and that `tokenbroker scheme status` reads it back.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.1
 * @see https://learn.microsoft.com/previous-versions/windows/internet-explorer/ie-developer/platform-apis/aa767914(v=vs.85)
 */
import { BrokerError } from '../../proto/index.js';
import { emptyReport, type ResolvedSchemeOptions, type SchemeReport, type SchemeStatus } from './types.js';
import { execCommand, runStep } from '../system/run.js';

export function registryKey(scheme: string): string {
  return `HKCU\\Software\\Classes\\${scheme}`;
}

/** The command line Windows runs: paths (anything but a plain word) quoted, the URL as "%1". */
export function windowsCommandLine(command: readonly string[]): string {
  const words = command.map((arg, index) => {
    if (/["\u0000-\u001f]/.test(arg)) {
      throw new BrokerError('BAD_REQUEST', `command[${index}]: a double quote or control character cannot appear in the Windows handler command`, {
        field: `command[${index}]`,
      });
    }
    return /^[A-Za-z0-9_-]+$/.test(arg) ? arg : `"${arg}"`;
  });
  return [...words, '"%1"'].join(' ');
}

export function windowsRegisterCommands(scheme: string, command: readonly string[]): string[][] {
  const key = registryKey(scheme);
  return [
    ['reg', 'add', key, '/ve', '/t', 'REG_SZ', '/d', `URL:tokenbroker (${scheme})`, '/f'],
    ['reg', 'add', key, '/v', 'URL Protocol', '/t', 'REG_SZ', '/d', '', '/f'],
    ['reg', 'add', `${key}\\shell\\open\\command`, '/ve', '/t', 'REG_SZ', '/d', windowsCommandLine(command), '/f'],
  ];
}

export function windowsUnregisterCommands(scheme: string): string[][] {
  return [['reg', 'delete', registryKey(scheme), '/f']];
}

const NOT_TESTED_NOTE = 'The Windows handler has not been tested on Windows by this project: check it with "tokenbroker scheme status".';

export async function registerWindows(scheme: string, options: ResolvedSchemeOptions): Promise<SchemeReport> {
  const report = emptyReport('register', scheme, options);
  report.notes.push(NOT_TESTED_NOTE);
  for (const argv of windowsRegisterCommands(scheme, options.command)) {
    await runStep(report, options, argv, { hint: 'Could not write the per-user registry key.' });
  }
  return report;
}

export async function unregisterWindows(scheme: string, options: ResolvedSchemeOptions): Promise<SchemeReport> {
  const report = emptyReport('unregister', scheme, options);
  report.notes.push(NOT_TESTED_NOTE);
  // Deleting a key that is not there fails; that is not an error when unregistering.
  for (const argv of windowsUnregisterCommands(scheme)) await runStep(report, options, argv, { optional: true });
  return report;
}

/** Reads the (Default) value from `reg query … /ve` output: "    (Default)    REG_SZ    <value>". */
export function parseRegQueryDefault(output: string): string | undefined {
  const match = /^\s+\S.*?\s{4}REG_(?:EXPAND_)?SZ\s{4}(.*)$/m.exec(output);
  return match?.[1]?.trim();
}

export async function statusWindows(scheme: string, options: ResolvedSchemeOptions): Promise<SchemeStatus> {
  const base = { scheme, platform: options.platform };
  if (options.platform !== process.platform) {
    return { ...base, registered: false, details: `Not on Windows: the registry cannot be asked about ${scheme}:.` };
  }
  const query = await execCommand(['reg', 'query', `${registryKey(scheme)}\\shell\\open\\command`, '/ve'], options.env);
  const handler = query.exitCode === 0 ? parseRegQueryDefault(query.stdout) : undefined;
  if (handler === undefined) return { ...base, registered: false, details: `No handler is registered for ${scheme}: under ${registryKey(scheme)}.` };
  const expected = options.command.length > 0 ? windowsCommandLine(options.command) : undefined;
  const ours = expected !== undefined ? handler === expected : / callback "%1"$/.test(handler);
  return {
    ...base,
    registered: ours,
    handler,
    details: ours ? `${scheme}: runs ${handler}` : `${scheme}: runs ${handler}, which is not this tokenbroker.`,
  };
}
