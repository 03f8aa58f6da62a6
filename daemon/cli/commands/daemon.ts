import { resolveSocketPath } from '../../../client/index.js';
import { LOG_LEVELS, type LogLevel } from '../../log.js';
import type { CommandContext } from '../context.js';
import { UsageError, parse } from '../usage.js';

export const help = `Usage: tokenbroker daemon [--config FILE] [--socket PATH] [--log-level LEVEL]

Runs the broker in the foreground until SIGTERM or SIGINT (a service manager runs it; see
"tokenbroker service install"). Logs JSON lines to stdout, never a token. The config is read again
on SIGHUP, on "tokenbroker reload", and shortly after the file changes (TOKENBROKER_CONFIG_WATCH=0
turns that off); a broken file is logged and the running config kept.

Options:
  --config FILE      config file (default: $TOKENBROKER_CONFIG, else ~/.config/tokenbroker/config.json;
                     a missing default file just means no profiles yet)
  --socket PATH      where to listen (default: $TOKENBROKER_SOCKET, else $XDG_RUNTIME_DIR/tokenbroker/broker.sock)
  --log-level LEVEL  ${LOG_LEVELS.join(', ')} (default: $TOKENBROKER_LOG_LEVEL or info)
  -h, --help         this help

Exit codes: 0 stopped cleanly, 1 error, 4 another daemon already listens on the socket, 6 config invalid.`;

export async function run(argv: string[], _context: CommandContext): Promise<number> {
  const { values } = parse('daemon', argv, { config: { type: 'string' }, 'log-level': { type: 'string' } });
  const logLevel = values['log-level'] ?? process.env['TOKENBROKER_LOG_LEVEL'] ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new UsageError(`daemon: --log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);
  }
  const { defaultConfigPath } = await import('../../config.js');
  const { runDaemon } = await import('../../start.js');
  const explicit = values.config ?? process.env['TOKENBROKER_CONFIG'];
  return runDaemon({
    socketPath: values.socket ?? resolveSocketPath(),
    configPath: explicit ?? defaultConfigPath(),
    configExplicit: explicit !== undefined && explicit !== '',
    logLevel: logLevel as LogLevel,
  });
}
