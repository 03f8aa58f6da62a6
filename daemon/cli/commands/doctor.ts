import type { CheckResult } from '../../doctor/types.js';
import type { CommandContext } from '../context.js';
import { out, type Style } from '../style.js';
import { parse } from '../usage.js';

export const help = `Usage: tokenbroker doctor [--json] [--config FILE] [--socket PATH]

Checks the setup and explains how to fix what is wrong. Each check prints one line:
  ✓ ok   ! warning (works, but worth a look)   ✗ failed   - skipped (does not apply)
and every failed check (and warning) is followed by "fix: …", the command or edit that fixes it.

Checks:
  node                Node.js is 22.13 or newer.
  config              The config file loads and validates; a mistake is named down to the field.
                      No config file at the default path is a warning (no profiles configured yet).
  socket-dir          The socket's directory is a real directory, yours, mode 0700, so no other user
                      can reach the daemon. Absent is fine: the daemon creates it.
  daemon              A daemon answers on the socket (pid, version, uptime); warns when it runs
                      another version than this CLI or reads another config file.
  keychain            The OS keychain (macOS Keychain, Windows Credential Manager, Secret Service)
                      stores, returns and deletes a probe entry. Uses $TOKENBROKER_KEYCHAIN_SERVICE
                      like the daemon (default "tokenbroker").
  service             The user service (systemd user unit / launchd agent) is installed and running.
                      Not installed is a warning: running "tokenbroker daemon" yourself is fine.
  scheme:<profile>    For a profile whose redirectUri is a custom scheme (com.example.broker:/callback),
                      tokenbroker is the OS handler of that scheme. Skipped for loopback redirects.
  provider:<profile>  The provider answers: discovery and JWKS (OIDC), or the JWKS (Wristband), each
                      within 5 s; and the clock skew between this machine and the provider, from the
                      HTTP Date header: more than 30 s is a warning, more than 60 s a failure (ID
                      tokens are checked with 60 s of tolerance, so sign-ins would fail).

Checks run concurrently; one that hangs fails after 15 s without holding up the rest.

Options:
  --json          machine-readable: { "ok": boolean, "checks": [{ id, title, status, detail, fix? }] }
  --config FILE   the config file (default: $TOKENBROKER_CONFIG, else the platform's config dir)
  --socket PATH   the daemon's socket (default: $TOKENBROKER_SOCKET or the per-user default)
  -h, --help      this help

Exit codes: 0 no check failed (warnings allowed), 1 at least one failed.`;

const SYMBOL: Record<CheckResult['status'], string> = { ok: '✓', warn: '!', fail: '✗', skip: '-' };
const COLOUR: Record<CheckResult['status'], Style> = { ok: 'green', warn: 'yellow', fail: ['red', 'bold'], skip: 'dim' };

export async function run(argv: string[], context: CommandContext): Promise<number> {
  const { values } = parse('doctor', argv, { json: { type: 'boolean' }, config: { type: 'string' } });
  const { runDoctor, allPassed } = await import('../../doctor/index.js');
  const checks = await runDoctor({
    ...(values.config === undefined ? {} : { configPath: values.config }),
    ...(values.socket === undefined ? {} : { socketPath: values.socket }),
  });
  const ok = allPassed(checks);
  context.out(values.json ? JSON.stringify({ ok, checks }, null, 2) : formatReport(checks));
  // A keychain or network call that never returns must not keep the command alive once it has answered.
  setTimeout(() => process.exit(), 2_000).unref();
  return ok ? 0 : 1;
}

export function formatReport(checks: readonly CheckResult[]): string {
  const width = Math.max(...checks.map((c) => c.title.length));
  const lines: string[] = [];
  for (const check of checks) {
    lines.push(`${out(COLOUR[check.status], SYMBOL[check.status])} ${check.title.padEnd(width)}  ${check.detail}`);
    if (check.fix !== undefined && (check.status === 'fail' || check.status === 'warn')) {
      lines.push(`  ${' '.repeat(width)}  ${out('bold', 'fix:')} ${check.fix}`);
    }
  }
  const count = (status: CheckResult['status']) => checks.filter((c) => c.status === status).length;
  const failed = count('fail');
  const warned = count('warn');
  lines.push('');
  if (failed === 0 && warned === 0) lines.push('All checks passed.');
  else {
    const parts = [];
    if (failed > 0) parts.push(`${failed} failed`);
    if (warned > 0) parts.push(`${warned} ${warned === 1 ? 'warning' : 'warnings'}`);
    lines.push(`${parts.join(', ')}${failed === 0 ? ' (nothing is broken)' : ''}.`);
  }
  return lines.join('\n');
}
