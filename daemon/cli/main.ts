#!/usr/bin/env node
/**
 * The `tokenbroker` command. Each subcommand is its own module, loaded on demand, so that short
 * commands such as `tokenbroker token` start without loading the daemon's dependencies.
 */
import { BrokerError } from '../../proto/errors.js'; // not the barrel: start-up time
import type { CommandContext } from './context.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { UsageError } from './usage.js';

interface CommandModule {
  readonly help: string;
  run(argv: string[], context: CommandContext): Promise<number>;
}

const COMMANDS: Record<string, { readonly summary: string; load(): Promise<CommandModule> }> = {
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

Exit codes: 0 ok, 1 error, 2 usage, 3 daemon not running, 4 daemon already running,
            5 login required, 6 config invalid, 130 cancelled,
            141 the reader of the output went away.`;

const context: CommandContext = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
  connectOptions: (socket) => (socket === undefined ? {} : { socketPath: socket }),
};

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
    throw new UsageError(`unknown command "${first}" (commands: ${Object.keys(COMMANDS).join(', ')})`);
  }
  const command = await COMMANDS[first]!.load();
  const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest; // after "--": exec's command line
  if (own.includes('--help') || own.includes('-h')) {
    context.out(command.help);
    return EXIT.OK;
  }
  return command.run(rest, context);
}

function report(error: unknown, json: boolean): number {
  if (error instanceof UsageError) {
    context.err(`tokenbroker: ${error.message}\nRun "tokenbroker --help" for usage.`);
    return EXIT.USAGE;
  }
  if (error instanceof BrokerError) {
    if (json) context.out(JSON.stringify({ error: error.toWire() }, null, 2));
    else context.err(`tokenbroker: ${error.message} [${error.code}]`);
    return exitCodeFor(error.code);
  }
  context.err(`tokenbroker: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  return EXIT.ERROR;
}

// A reader that goes away early (`tokenbroker scheme register --dry-run | head -3`) is not our error: stop
// quietly with the status a shell gives a process ended by SIGPIPE (128 + 13), as `cat` or `git log` would.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(EXIT.BROKEN_PIPE);
  });
}

const argv = process.argv.slice(2);
main(argv).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.exitCode = report(error, argv.includes('--json') || argv.includes('--format=json') || argv.join(' ').includes('--format json'));
  },
);
