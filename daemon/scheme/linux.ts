/**
 * Linux (and other freedesktop systems): the custom redirect scheme is a MIME type
 * `x-scheme-handler/<scheme>` handled by a desktop entry, so the OS runs `… callback <url>`.
 *
 *   $XDG_DATA_HOME/applications/tokenbroker-<scheme>.desktop   (default ~/.local/share)
 *   xdg-mime default tokenbroker-<scheme>.desktop x-scheme-handler/<scheme>
 *     → writes "[Default Applications] x-scheme-handler/<scheme>=…" to $XDG_CONFIG_HOME/mimeapps.list
 *   update-desktop-database $XDG_DATA_HOME/applications      (if installed: refreshes mimeinfo.cache)
 *
 * RFC 8252 §7.1: the OS hands the private-use-scheme redirect to the app that registered it.
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.1
 * @see https://specifications.freedesktop.org/desktop-entry-spec/latest/exec-variables.html
 * @see https://specifications.freedesktop.org/mime-apps-spec/latest/
 */
import fs from 'node:fs';
import path from 'node:path';
import { BrokerError } from '../../proto/index.js';
import { emptyReport, type ResolvedSchemeOptions, type SchemeReport, type SchemeStatus } from './types.js';
import { execCommand, findExecutable, removeStep, runStep, writeFileStep } from '../system/run.js';

const XDG_UTILS_HINT = 'Install xdg-utils (Debian/Ubuntu: apt-get install xdg-utils), or use the loopback redirect (redirectUri "loopback").';

export function desktopFileId(scheme: string): string {
  return `tokenbroker-${scheme}.desktop`;
}

export function mimeTypeOf(scheme: string): string {
  return `x-scheme-handler/${scheme}`;
}

export interface LinuxPaths {
  readonly applicationsDir: string;
  readonly desktopFile: string;
  readonly mimeappsList: string;
  /** Where older xdg-mime versions (KDE 4) wrote associations; cleaned on unregister too. */
  readonly legacyMimeappsList: string;
}

/** XDG base directories: a relative value is invalid per the spec and ignored. */
export function linuxPaths(scheme: string, env: NodeJS.ProcessEnv, home: string): LinuxPaths {
  const dataHome = absoluteOr(env['XDG_DATA_HOME'], path.join(home, '.local', 'share'));
  const configHome = absoluteOr(env['XDG_CONFIG_HOME'], path.join(home, '.config'));
  const applicationsDir = path.join(dataHome, 'applications');
  return {
    applicationsDir,
    desktopFile: path.join(applicationsDir, desktopFileId(scheme)),
    mimeappsList: path.join(configHome, 'mimeapps.list'),
    legacyMimeappsList: path.join(applicationsDir, 'mimeapps.list'),
  };
}

function absoluteOr(value: string | undefined, fallback: string): string {
  return value !== undefined && path.isAbsolute(value) ? value : fallback;
}

// ---- the desktop entry ----------------------------------------------------------------------

/** Characters that force an Exec argument to be quoted (Desktop Entry spec, "The Exec key"). */
const EXEC_RESERVED = /[\s"'\\><~|&;$*?#()`]/;

/**
 * Quotes one Exec argument: in double quotes, with `"`, `` ` ``, `$` and `\` backslash-escaped, and
 * `%` doubled (a literal percent sign; `%u` is a field code).
 */
export function quoteExecArgument(arg: string, field: string): string {
  if (/[\u0000-\u001f\u007f]/.test(arg)) {
    throw new BrokerError('BAD_REQUEST', `${field}: a control character (such as a newline) cannot appear in a desktop entry's Exec line`, { field });
  }
  const percent = arg.replace(/%/g, '%%');
  if (arg !== '' && !EXEC_RESERVED.test(arg)) return percent;
  return `"${percent.replace(/["`$\\]/g, (c) => `\\${c}`)}"`;
}

/**
 * The string-value escape that is applied to a desktop entry value before Exec unquoting
 * (so a literal backslash inside a quoted argument is written as four).
 */
function escapeDesktopString(value: string): string {
  return value.replace(/\\/g, '\\\\');
}

export function desktopEntry(scheme: string, command: readonly string[]): string {
  const exec = command.map((arg, index) => quoteExecArgument(arg, `command[${index}]`)).join(' ');
  return [
    '[Desktop Entry]',
    'Type=Application',
    `Name=tokenbroker (${scheme})`,
    `Comment=Hands ${scheme}: sign-in redirects to the tokenbroker daemon`,
    'NoDisplay=true',
    'Terminal=false',
    `MimeType=${mimeTypeOf(scheme)};`,
    // %u: the URL as one argument (RFC 8252 §7.1 redirect → `tokenbroker callback <url>`).
    `Exec=${escapeDesktopString(exec)} %u`,
    '',
  ].join('\n');
}

// ---- mimeapps.list ---------------------------------------------------------------------------

const ASSOCIATION_GROUPS = new Set(['[Default Applications]', '[Added Associations]']);

/**
 * Removes `desktopId` from the `mimeType=` lines of the association groups, keeping every other line
 * and every other application as it was; a line left without applications is dropped. (xdg-mime has
 * no "unset".)
 */
export function removeMimeAssociation(text: string, mimeType: string, desktopId: string): { text: string; changed: boolean } {
  let group = '';
  let changed = false;
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed.startsWith('[')) group = trimmed;
    const eq = line.indexOf('=');
    if (!ASSOCIATION_GROUPS.has(group) || eq < 0 || line.slice(0, eq).trim() !== mimeType) {
      out.push(line);
      continue;
    }
    const apps = line
      .slice(eq + 1)
      .split(';')
      .map((app) => app.trim())
      .filter((app) => app !== '');
    const kept = apps.filter((app) => app !== desktopId);
    if (kept.length === apps.length) {
      out.push(line);
      continue;
    }
    changed = true;
    if (kept.length > 0) out.push(`${mimeType}=${kept.join(';')};`);
  }
  return { text: out.join('\n'), changed };
}

// ---- register / unregister / status ------------------------------------------------------------

export async function registerLinux(scheme: string, options: ResolvedSchemeOptions): Promise<SchemeReport> {
  const report = emptyReport('register', scheme, options);
  const paths = linuxPaths(scheme, options.env, options.home);
  const entry = desktopEntry(scheme, options.command);
  if (/"/.test(entry.split('\nExec=')[1] ?? '')) {
    report.notes.push(
      'The handler path needs quoting in the Exec line. GNOME and KDE unquote it as the spec says; ' +
        "xdg-open's generic fallback (no desktop environment) does not, so the handler may not start there.",
    );
  }
  if (!options.dryRun && findExecutable('xdg-mime', options.env) === undefined) {
    throw new BrokerError('INTERNAL', `Cannot register the ${scheme}: handler: xdg-mime is not installed. ${XDG_UTILS_HINT}`);
  }
  writeFileStep(report, options, paths.desktopFile, entry);
  await runStep(report, options, ['xdg-mime', 'default', desktopFileId(scheme), mimeTypeOf(scheme)], { hint: XDG_UTILS_HINT });
  await refreshDesktopDatabase(report, options, paths);
  return report;
}

export async function unregisterLinux(scheme: string, options: ResolvedSchemeOptions): Promise<SchemeReport> {
  const report = emptyReport('unregister', scheme, options);
  const paths = linuxPaths(scheme, options.env, options.home);
  removeStep(report, options, paths.desktopFile);
  for (const list of [paths.mimeappsList, paths.legacyMimeappsList]) {
    let text: string;
    try {
      text = fs.readFileSync(list, 'utf8');
    } catch {
      continue;
    }
    const edited = removeMimeAssociation(text, mimeTypeOf(scheme), desktopFileId(scheme));
    if (!edited.changed) continue;
    const mode = fs.statSync(list).mode & 0o777;
    writeFileStep(report, options, list, edited.text, mode);
  }
  await refreshDesktopDatabase(report, options, paths);
  return report;
}

async function refreshDesktopDatabase(report: SchemeReport, options: ResolvedSchemeOptions, paths: LinuxPaths): Promise<void> {
  if (findExecutable('update-desktop-database', options.env) === undefined) {
    report.notes.push('update-desktop-database is not installed (package desktop-file-utils); the mimeapps.list default is enough for xdg-open.');
    return;
  }
  await runStep(report, options, ['update-desktop-database', paths.applicationsDir], { optional: true });
}

export async function statusLinux(scheme: string, options: ResolvedSchemeOptions): Promise<SchemeStatus> {
  const paths = linuxPaths(scheme, options.env, options.home);
  const ours = desktopFileId(scheme);
  const hasFile = fs.existsSync(paths.desktopFile);
  const query = await execCommand(['xdg-mime', 'query', 'default', mimeTypeOf(scheme)], options.env);
  const base = { scheme, platform: options.platform };
  if (query.missing) {
    return { ...base, registered: false, details: `xdg-mime is not installed, so the default handler of ${scheme}: is unknown. ${XDG_UTILS_HINT}` };
  }
  const handler = query.stdout.trim();
  const exec = hasFile ? /^Exec=(.*)$/m.exec(fs.readFileSync(paths.desktopFile, 'utf8'))?.[1] : undefined;
  const registered = hasFile && handler === ours;
  // xdg-mime skips associations whose desktop file is gone, so look at mimeapps.list for those.
  const listed = [paths.mimeappsList, paths.legacyMimeappsList].some((list) => {
    try {
      return removeMimeAssociation(fs.readFileSync(list, 'utf8'), mimeTypeOf(scheme), ours).changed;
    } catch {
      return false;
    }
  });
  const details = registered
    ? `${scheme}: opens ${paths.desktopFile} (Exec=${exec ?? '?'})`
    : !hasFile && (handler === ours || (handler === '' && listed))
      ? `mimeapps.list names ${ours}, but ${paths.desktopFile} is missing: run "tokenbroker scheme register" again.`
      : handler !== ''
        ? `${scheme}: opens ${handler}, not tokenbroker.${hasFile ? ` (${paths.desktopFile} exists but is not the default.)` : ''}`
        : `No handler is registered for ${scheme}:.${hasFile ? ` (${paths.desktopFile} exists but is not the default.)` : ''}`;
  return { ...base, registered, ...(handler === '' ? {} : { handler }), details };
}
