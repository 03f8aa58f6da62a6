import type { ParseArgsConfig } from 'node:util';
import { EXIT } from './exit-codes.js';

/** A wrong command line: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly exitCode = EXIT.USAGE;
}

type Options = NonNullable<ParseArgsConfig['options']>;

// Not `import { parseArgs } from 'node:util'`: an ESM import of node:util builds a facade of all its
// exports and loads their lazy parts (worker_threads, streams, diff, …), start-up time of every command.
const { parseArgs } = process.getBuiltinModule('node:util');

/** Options every command understands. */
export const COMMON_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  socket: { type: 'string' },
} as const satisfies Options;

/** node's parseArgs, strict, with errors that name the command. */
export function parse<O extends Options>(command: string, argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...options }, strict: true, allowPositionals });
  } catch (error) {
    throw new UsageError(`${command}: ${(error as Error).message.replace(/\. To specify.*$/s, '')}`);
  }
}
