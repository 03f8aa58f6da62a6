/**
 * What every `tokenbroker` entry shares around a command: where output goes, how an error becomes a
 * message and an exit code, and a reader that goes away early. Used by main.ts (every command) and by
 * the bundled fast entry (fast.ts: the commands kubectl and git run on every invocation).
 */
import { BrokerError } from '../../proto/errors.js'; // not the barrel: start-up time
import type { CommandContext } from './context.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { err as styleErr } from './style.js';
import { UsageError } from './usage.js';

export const context: CommandContext = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
  connectOptions: (socket) => (socket === undefined ? {} : { socketPath: socket }),
};

function report(error: unknown, json: boolean): number {
  if (error instanceof UsageError) {
    context.err(`tokenbroker: ${error.message}\nRun "tokenbroker --help" for usage.`);
    return EXIT.USAGE;
  }
  if (error instanceof BrokerError) {
    if (json) context.out(JSON.stringify({ error: error.toWire() }, null, 2));
    else context.err(`${styleErr(['red', 'bold'], 'tokenbroker:')} ${error.message} [${error.code}]`);
    return exitCodeFor(error.code);
  }
  context.err(`tokenbroker: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  return EXIT.ERROR;
}

/** Runs `main` with the process's arguments and sets the exit code from its result or its error. */
export function runCli(main: (argv: string[]) => Promise<number>): void {
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
}
