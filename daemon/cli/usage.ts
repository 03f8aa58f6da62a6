import type { ParseArgsConfig } from 'node:util';
import { EXIT } from './exit-codes.js';
import { didYouMean } from './suggest.js';

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
  const all = { ...COMMON_OPTIONS, ...options };
  try {
    return parseArgs({ args: argv, options: all, strict: true, allowPositionals });
  } catch (error) {
    const message = (error as Error).message.replace(/\. To specify.*$/s, '');
    // "Unknown option '--jsn'": suggest the nearest option of this command
    const unknown = /^Unknown option '(--[^'=]+)/.exec(message)?.[1];
    const names = Object.keys(all).map((name) => `--${name}`);
    const hint = unknown === undefined ? '' : didYouMean(unknown, names);
    throw new UsageError(`${command}: ${message}${hint ? `.${hint}` : ''}`);
  }
}
