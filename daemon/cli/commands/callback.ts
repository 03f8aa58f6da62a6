import { BrokerError, connect } from '../../../client/index.js';
import type { CommandContext } from '../context.js';
import { UsageError, parse } from '../usage.js';

export const help = `Usage: tokenbroker callback <url> [--json] [--socket PATH]

What the operating system runs when the browser is redirected to the broker's custom scheme
(e.g. com.example.broker:/callback?code=…&state=…). It hands the URL to the daemon, which completes
the sign-in (or sign-out) that is waiting for it, and prints a short result.
Registered by "tokenbroker scheme register"; you do not normally run it yourself.

Exit codes: 0 ok, 1 the sign-in failed, 2 not a URL, 3 daemon not running.`;

export async function run(argv: string[], context: CommandContext): Promise<number> {
  const { values, positionals } = parse('callback', argv, { json: { type: 'boolean' } }, true);
  if (positionals.length !== 1) throw new UsageError('callback: expected exactly one argument, the redirect URL');
  const url = positionals[0]!;
  if (!URL.canParse(url)) throw new UsageError(`callback: ${JSON.stringify(url.slice(0, 80))} is not a URL`);
  const client = await connect({ ...context.connectOptions(values.socket), clientName: 'tokenbroker-callback', reconnect: false });
  try {
    const result = await client.callback(url, { timeoutMs: 60_000 });
    context.out(values.json ? JSON.stringify(result, null, 2) : `${result.message}. You can close the browser tab.`);
    return 0;
  } catch (error) {
    if (error instanceof BrokerError && !values.json) {
      context.err(`tokenbroker: the redirect was not accepted: ${error.message} [${error.code}]`);
      return 1;
    }
    throw error;
  } finally {
    await client.close();
  }
}
