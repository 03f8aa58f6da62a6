import { connect, type ReloadResult } from '../../../client/index.js';
import type { CommandContext } from '../context.js';
import { parse } from '../usage.js';

export const help = `Usage: tokenbroker reload [--json] [--socket PATH]

Makes the running daemon read its config file again and apply it, without a restart and without
dropping any app's connection (the same as "kill -HUP <daemon pid>"; the daemon also reloads by
itself shortly after the file changes):

  - added profiles appear (a session already in the keychain comes back);
  - removed profiles are signed out in memory (their keychain entry is kept);
  - changed profiles keep their session when the issuer and client id are the same (new scopes,
    redirect, timers, policies apply); with another issuer or client id they start over (sign in).

A broken file changes nothing: the daemon keeps the config it had, and "tokenbroker status" shows
the error until a reload succeeds.

Options:
  --json         machine-readable result ({ configPath, added, removed, changed, restarted, defaultProfile })
  --socket PATH  the daemon's socket
  -h, --help     this help

Exit codes: 0 reloaded, 3 the daemon is not running, 6 the config file is invalid (nothing changed),
            1 another error.`;

export async function run(argv: string[], context: CommandContext): Promise<number> {
  const { values } = parse('reload', argv, { json: { type: 'boolean' } });
  const client = await connect({ ...context.connectOptions(values.socket), clientName: 'tokenbroker-cli', reconnect: false });
  try {
    const result = await client.request('reload', {});
    if (values.json) context.out(JSON.stringify(result, null, 2));
    else describe(result, context);
    return 0;
  } finally {
    await client.close();
  }
}

function describe(result: ReloadResult, context: CommandContext): void {
  context.out(`Reloaded ${result.configPath ?? '(no config file)'}.`);
  const lines: Array<[string, readonly string[], string]> = [
    ['added', result.added, ''],
    ['removed', result.removed, ' (signed out here; keychain entries kept)'],
    ['changed', result.changed, ' (sessions kept)'],
    ['restarted', result.restarted, ' (issuer or client id changed: sign in again)'],
  ];
  const any = lines.filter(([, names]) => names.length > 0);
  for (const [label, names, note] of any) context.out(`  ${`${label}:`.padEnd(11)} ${names.join(', ')}${note}`);
  if (any.length === 0) context.out('  no changes');
  context.out(`  ${'default:'.padEnd(11)} ${result.defaultProfile ?? 'none'}`);
}
