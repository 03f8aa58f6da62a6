/**
 * What the `profile` subcommands and `init` share: where the config file is, whether a person is at a
 * terminal to answer questions, and asking them (the prompt library is loaded only when a question is
 * actually asked, so scripted runs never load it).
 */
import { BrokerError, PROFILE_NAME_PATTERN } from '../../proto/index.js';
import { defaultConfigPath } from '../config.js';
import { UsageError } from './usage.js';

export interface ConfigLocation {
  readonly file: string;
  /** Named by --config or $TOKENBROKER_CONFIG (then it must exist for reading). */
  readonly explicit: boolean;
}

/** `--config`, else `$TOKENBROKER_CONFIG`, else the platform's default (as the daemon looks it up). */
export function configLocation(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): ConfigLocation {
  const explicit = flag ?? (env['TOKENBROKER_CONFIG'] || undefined);
  return { file: explicit ?? defaultConfigPath(env), explicit: explicit !== undefined };
}

/** A person can answer questions: stdin and stdout are terminals, and output is not for a script. */
export function isInteractive(json: boolean | undefined): boolean {
  return !json && process.stdin.isTTY === true && process.stdout.isTTY === true;
}

export function checkProfileName(name: string | undefined, command: string): string {
  if (name === undefined) throw new UsageError(`${command}: name the profile, e.g. "tokenbroker ${command} work"`);
  if (!PROFILE_NAME_PATTERN.test(name)) {
    throw new UsageError(
      `${command}: profile name ${JSON.stringify(name)}: expected letters, digits, ".", "_", "-" (starting with a letter or digit, at most 64)`,
    );
  }
  return name;
}

/** Asks a yes/no question (the prompt library is loaded on first use). */
export async function askConfirm(message: string, defaultAnswer: boolean): Promise<boolean> {
  const { confirm } = await import('@inquirer/prompts');
  return confirm({ message, default: defaultAnswer });
}

/** Ctrl-C or a closed terminal during a question. */
export function isPromptCancel(error: unknown): boolean {
  return error instanceof Error && (error.name === 'ExitPromptError' || error.name === 'AbortPromptError');
}

/** The message for a config that has no profiles: where it is and the command that adds one. */
export function noProfilesHint(file: string): string {
  return `no profiles are configured (config file: ${file}); add one with "tokenbroker init" or "tokenbroker profile add NAME --issuer URL --client-id ID"`;
}

/**
 * A validation error of the new profile (its field is under `profiles.<name>`) is the command line's
 * fault: BAD_REQUEST (exit 2) naming the flag that sets the field. Anything else wrong in the file stays
 * CONFIG_INVALID (exit 6).
 */
export function blameFlag(error: unknown, profile: string, flagOf: (field: string | undefined) => string | undefined): unknown {
  if (!(error instanceof BrokerError) || error.code !== 'CONFIG_INVALID') return error;
  if (error.field === undefined || !(error.field === `profiles.${profile}` || error.field.startsWith(`profiles.${profile}.`))) return error;
  const flag = flagOf(error.field);
  return new BrokerError('BAD_REQUEST', `${error.message}${flag === undefined ? '' : ` (set with ${flag})`}; nothing was written`, {
    field: error.field,
    cause: error,
  });
}
