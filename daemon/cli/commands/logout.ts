import { connect } from '../../../client/index.js';
import type { CommandContext } from '../context.js';
import { parse } from '../usage.js';

export const help = `Usage: tokenbroker logout [--profile NAME] [--no-browser] [--json] [--socket PATH]

Signs out everywhere, in this order: deletes the profile's tokens from the keychain, revokes the
refresh token at the provider (RFC 7009), and opens the provider's logout page in the browser to end
the provider session. Apps get a "loggedOut" event. A failed revocation is reported, not fatal.

Options:
  --profile NAME  the profile (default: the configured default profile)
  --no-browser    do not open the provider's logout page (its URL is still printed)
  --json          machine-readable result
  --socket PATH   the daemon's socket
  -h, --help      this help`;

export async function run(argv: string[], context: CommandContext): Promise<number> {
  const { values } = parse('logout', argv, { profile: { type: 'string' }, 'no-browser': { type: 'boolean' }, json: { type: 'boolean' } });
  const client = await connect({ ...context.connectOptions(values.socket), clientName: 'tokenbroker-cli', reconnect: false });
  try {
    const result = await client.logout({
      ...(values.profile === undefined ? {} : { profile: values.profile }),
      openBrowser: !values['no-browser'],
      timeoutMs: 60_000,
    });
    if (values.json) {
      context.out(JSON.stringify(result, null, 2));
      return 0;
    }
    context.out(`Signed out of ${result.profile}.`);
    context.out(`  keychain:   ${result.keychainCleared ? 'tokens deleted' : 'no tokens were stored'}`);
    context.out(`  revocation: ${result.revoked ? 'refresh token revoked at the provider' : `not revoked (${result.revokeError ?? 'unknown reason'})`}`);
    if (result.logoutUrl) {
      context.out(
        `  provider:   ${values['no-browser'] ? 'to end the provider session too, open' : 'logout page opened in the browser; if it did not open, visit'}:`,
      );
      context.out(`              ${result.logoutUrl}`);
    } else context.out('  provider:   no logout endpoint; the provider session (if any) is untouched');
    return 0;
  } finally {
    await client.close();
  }
}
