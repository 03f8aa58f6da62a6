import { connect } from '../../../client/index.js';
import type { ProfileStatus, StatusResult } from '../../../proto/index.js';
import { formatDuration } from '../../duration.js';
import type { CommandContext } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { parse } from '../usage.js';

export const help = `Usage: tokenbroker status [--profile NAME] [--json] [--socket PATH]

Shows the daemon (version, pid, uptime, socket, connected apps) and each profile's state, who is
signed in, when the access token expires and when it is refreshed next. Never prints a token.

Options:
  --profile NAME  only this profile
  --json          machine-readable output (the protocol's status result, every page joined)
  --socket PATH   the daemon's socket (default: $TOKENBROKER_SOCKET or the per-user default)
  -h, --help      this help

Exit codes: 0 ok, 3 daemon not running, 5 the profile (without --profile: any profile) needs
sign-in (logged-out or login-required; run "tokenbroker login"), as "gh auth status" does.`;

/** States in which a profile has no usable sign-in: status exits 5 (EXIT.LOGIN_REQUIRED). */
const NEEDS_SIGN_IN: ReadonlySet<string> = new Set(['logged-out', 'login-required']);

export async function run(argv: string[], context: CommandContext): Promise<number> {
  const { values } = parse('status', argv, { profile: { type: 'string' }, json: { type: 'boolean' } });
  const client = await connect({ ...context.connectOptions(values.socket), clientName: 'tokenbroker-cli' });
  try {
    const status = await client.status(values.profile === undefined ? {} : { profile: values.profile });
    // First run: where the config file is (or would be), for the hint below the table.
    const configFile = status.profiles.length === 0 ? await (await import('../first-run.js')).configPathOf(status.configPath) : undefined;
    context.out(values.json ? JSON.stringify(status, null, 2) : formatStatus(status, Date.now(), configFile));
    return status.profiles.some((p) => NEEDS_SIGN_IN.has(p.state)) ? EXIT.LOGIN_REQUIRED : EXIT.OK;
  } finally {
    await client.close();
  }
}

export function formatStatus(status: StatusResult, now: number, configFile?: string): string {
  const lines = [
    `tokenbroker ${status.daemonVersion} (protocol ${status.protocolVersion}), pid ${status.pid}, up ${formatDuration(status.uptimeSeconds * 1000)}`,
    `socket   ${status.socketPath}`,
    `config   ${status.configPath ?? '(none: no profiles configured)'}`,
    `clients  ${status.connectedClients} connected`,
    '',
  ];
  // A reload that failed: the daemon runs on with the config it had, until the file is fixed.
  if (status.configError) {
    lines.splice(
      3,
      0,
      `CONFIG NOT RELOADED (${new Date(status.configError.at).toISOString()}): ${status.configError.message}`,
      `         the daemon keeps the config it had; fix ${status.configError.path}, then run "tokenbroker reload"`,
    );
  }
  if (status.profiles.length === 0) {
    const file = configFile ?? status.configPath;
    lines.push(
      `No profiles${file ? ` (config file: ${file})` : ''}. Add one with "tokenbroker init", or "tokenbroker profile add NAME --issuer URL --client-id ID".`,
    );
    return lines.join('\n');
  }
  const rows = status.profiles.map((p) => profileRow(p, now));
  const header = ['PROFILE', 'STATE', 'USER', 'EXPIRES', 'NEXT REFRESH', 'LAST REFRESH', 'ISSUER'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const format = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  lines.push(format(header), ...rows.map(format));
  // An account switch is never silent (the subject changed at a sign-in).
  for (const p of status.profiles) {
    if (p.previousSubject !== undefined && p.accountChangedAt !== undefined) {
      lines.push(
        '',
        `ACCOUNT CHANGED: ${p.name} was signed in as ${p.previousSubject}; since ${new Date(p.accountChangedAt).toISOString()} (${relative(p.accountChangedAt, now)}) it is ${p.subject ?? 'signed out'}${p.email ? ` (${p.email})` : ''}.`,
      );
    }
  }
  // A clock far off the provider's (measured by the daemon at its last refresh) gets a line of its own.
  for (const p of status.profiles) {
    const skew = p.clockSkewSeconds;
    if (skew === undefined || Math.abs(skew) < CLOCK_SKEW_NOTE_SECONDS) continue;
    const off = `${formatDuration(Math.abs(skew) * 1000)} ${skew > 0 ? 'behind' : 'ahead of'}`;
    lines.push(`clock skew (${p.name}): this machine's clock is ${off} the provider's (${skew > 0 ? '+' : ''}${skew} s); set it right (enable NTP)`);
  }
  return lines.join('\n');
}

/** A clock this far off the provider's is mentioned below the table. @see doctor's SKEW_WARN_SECONDS */
const CLOCK_SKEW_NOTE_SECONDS = 30;

function profileRow(p: ProfileStatus, now: number): string[] {
  const last = p.lastRefresh
    ? `${p.lastRefresh.ok ? 'ok' : `failed ${p.lastRefresh.code ?? ''}`.trim()} ${relative(p.lastRefresh.at, now)}` +
      (p.consecutiveFailures ? ` (${p.consecutiveFailures} failures)` : '')
    : '-';
  return [
    p.isDefault ? `${p.name} *` : p.name,
    p.reason ? `${p.state} (${p.reason})` : p.state,
    p.email ?? p.username ?? p.subject ?? '-',
    p.expiresAt === undefined ? '-' : relative(p.expiresAt, now),
    p.nextRefreshAt === undefined ? '-' : relative(p.nextRefreshAt, now),
    last,
    p.issuer,
  ];
}

/** "in 4m 10s" / "12s ago". */
export function relative(at: number, now: number): string {
  const delta = at - now;
  return delta >= 0 ? `in ${formatDuration(delta)}` : `${formatDuration(-delta)} ago`;
}
