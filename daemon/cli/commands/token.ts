import { connect } from '../../../client/index.js';
import type { CommandContext } from '../context.js';
import { UsageError, parse } from '../usage.js';

export const help = `Usage: tokenbroker token [--profile NAME] [--min-valid SECONDS] [--json] [--socket PATH]

Prints a valid access token for the profile on stdout, and nothing else, for scripts:

  printf 'Authorization: Bearer %s' "$(tokenbroker token)" | curl -H @- https://api.example.com/me

(printf is a shell builtin and curl reads the header from stdin, so the token never appears in a
process's command line, where other users could see it with ps.)

The daemon refreshes first when the token has less than --min-valid seconds left.

Options:
  --profile NAME       the profile (default: the configured default profile)
  --min-valid SECONDS  refresh first when less is left (default: the profile's refresh.minValidSeconds, 30)
  --json               print {profile, accessToken, tokenType, expiresAt, scopes} instead
  --socket PATH        the daemon's socket
  -h, --help           this help

Exit codes: 0 ok, 3 daemon not running, 5 login required (run "tokenbroker login").`;

export async function run(argv: string[], context: CommandContext): Promise<number> {
  const { values } = parse('token', argv, { profile: { type: 'string' }, 'min-valid': { type: 'string' }, json: { type: 'boolean' } });
  let minValidSeconds: number | undefined;
  if (values['min-valid'] !== undefined) {
    minValidSeconds = Number(values['min-valid']);
    if (!Number.isInteger(minValidSeconds) || minValidSeconds < 0 || minValidSeconds > 3600) {
      throw new UsageError(`token: --min-valid must be a whole number of seconds from 0 to 3600, got ${JSON.stringify(values['min-valid'])}`);
    }
  }
  const client = await connect({ ...context.connectOptions(values.socket), clientName: 'tokenbroker-cli', reconnect: false });
  try {
    const token = await client.getToken({
      ...(values.profile === undefined ? {} : { profile: values.profile }),
      ...(minValidSeconds === undefined ? {} : { minValidSeconds }),
    });
    context.out(values.json ? JSON.stringify(token, null, 2) : token.accessToken);
    return 0;
  } finally {
    await client.close();
  }
}
