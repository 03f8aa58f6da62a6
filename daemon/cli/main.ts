#!/usr/bin/env node
/**
 * The `tokenbroker` command. Each subcommand is its own module, loaded on demand, so that short
 * commands such as `tokenbroker token` start without loading the daemon's dependencies.
 */
import { BrokerError } from '../../proto/errors.js'; // not the barrel: start-up time
import { context, runCli } from './cli-runner.js';
import type { CommandContext } from './context.js';
import { EXIT } from './exit-codes.js';
import { UsageError } from './usage.js';

interface CommandModule {
  readonly help: string;
  run(argv: string[], context: CommandContext): Promise<number>;
}

const COMMANDS: Record<string, { readonly summary: string; load(): Promise<CommandModule> }> = {
  init: { summary: 'first-run setup: a profile, the scheme, the service, sign-in', load: () => import('./commands/init.js') },
  profile: { summary: 'add, list, show, use (default) or remove profiles', load: () => import('./commands/profile.js') },
  daemon: { summary: 'run the broker in the foreground (for launchd/systemd)', load: () => import('./commands/daemon.js') },
  status: { summary: 'show the daemon and every profile (--json for scripts)', load: () => import('./commands/status.js') },
  login: { summary: 'sign in through the browser (--device: a code on another device)', load: () => import('./commands/login.js') },
  token: { summary: 'print a valid access token (for scripts, kubectl, curl)', load: () => import('./commands/token.js') },
  exec: { summary: 'run a command with a token in its environment', load: () => import('./commands/exec.js') },
  'git-credential': { summary: 'git credential helper (gitcredentials(7))', load: () => import('./commands/git-credential.js') },
  'setup-git': { summary: "make tokenbroker git's credential helper for a URL", load: () => import('./commands/setup-git.js') },
  logout: { summary: 'sign out: keychain, revocation, provider logout page', load: () => import('./commands/logout.js') },
  callback: { summary: 'hand a redirect URL to the daemon (run by the OS)', load: () => import('./commands/callback.js') },
  scheme: { summary: 'register the custom URL scheme handler with the OS', load: () => import('./commands/scheme.js') },
  doctor: { summary: 'check the setup and explain how to fix what is wrong', load: () => import('./commands/doctor.js') },
  service: { summary: 'install the broker as a launchd/systemd user service', load: () => import('./commands/service.js') },
  completion: { summary: 'print the shell completion script (bash, zsh, fish)', load: () => import('./commands/completion.js') },
  reload: { summary: 'make the daemon read its config file again (--json)', load: () => import('./commands/reload.js') },
};

const HELP = `tokenbroker: one sign-in for every app on this desktop.

Usage: tokenbroker <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(14)} ${c.summary}`)
  .join('\n')}

Run "tokenbroker <command> --help" for a command's options.

Global options:
  -h, --help     this help
  -v, --version  print the version

Environment:
  TOKENBROKER_SOCKET     the daemon's socket path
  TOKENBROKER_CONFIG     the config file
  TOKENBROKER_LOG_LEVEL  the daemon's log level
  TOKENBROKER_LOG_FORMAT json or pretty (default: pretty on a terminal, else json)
  NO_COLOR, FORCE_COLOR  colour off / on (default: only on a terminal)

Exit codes: 0 ok, 1 error, 2 usage, 3 daemon not running, 4 daemon already running,
            5 login required, 6 config invalid, 130 cancelled,
            141 the reader of the output went away.`;

/** The shared context (cli-runner.ts) plus the command table, for completion and "Did you mean". */
const mainContext: CommandContext = { ...context, commands: COMMANDS };

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    const topic = first === 'help' ? rest[0] : undefined;
    if (topic !== undefined && Object.hasOwn(COMMANDS, topic)) context.out((await COMMANDS[topic]!.load()).help);
    else context.out(HELP);
    return first === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (first === '-v' || first === '--version') {
    const { packageVersion } = await import('../version.js');
    context.out(packageVersion());
    return EXIT.OK;
  }
  if (!Object.hasOwn(COMMANDS, first)) {
    const { didYouMean } = await import('./suggest.js');
    throw new UsageError(`unknown command "${first}".${didYouMean(first, Object.keys(COMMANDS))} (commands: ${Object.keys(COMMANDS).join(', ')})`);
  }
  const command = await COMMANDS[first]!.load();
  const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest; // after "--": exec's command line
  if (own.includes('--help') || own.includes('-h')) {
    context.out(command.help);
    return EXIT.OK;
  }
  try {
    return await command.run(rest, mainContext);
  } catch (error) {
    // No daemon listens: start the installed service, if there is one, and run the command again.
    if (!STARTS_SERVICE.has(first) || !(error instanceof BrokerError) || error.code !== 'DAEMON_NOT_RUNNING') throw error;
    const { startInstalledService } = await import('./autostart.js');
    if (!(await startInstalledService(rest, mainContext))) throw error;
    return command.run(rest, mainContext);
  }
}

/** Commands that start the installed user service when no daemon listens (autostart.ts). */
const STARTS_SERVICE: ReadonlySet<string> = new Set(['token', 'login', 'status']);

runCli(main);
