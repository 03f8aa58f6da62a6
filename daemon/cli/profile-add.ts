/**
 * Adding a profile (`tokenbroker profile add`, and the first step of `tokenbroker init`): from flags or
 * the wizard, validated with the daemon's rules, its provider checked for real, the custom-scheme
 * handler registered when needed, then written atomically (daemon/config-write.ts).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BrokerError } from '../../proto/index.js';
import { editConfig, readConfigDocument, setDefaultProfile, setProfile, validateDocument } from '../config-write.js';
import type { CommandContext } from './context.js';
import { askConfirm, blameFlag, configLocation } from './profile-common.js';
import { anyProfileFlag, flagForField, missingRequiredFlags, profileFromFlags, type ProfileFlagValues } from './profile-flags.js';
import { checkProvider, formatCheck, type ProviderCheckResult } from './provider-check.js';
import { UsageError } from './usage.js';

export interface AddOptions {
  readonly name: string;
  readonly flags: ProfileFlagValues;
  readonly config: string | undefined;
  /** Skip the provider check. */
  readonly noCheck: boolean;
  /** Overwrite an existing profile of that name. */
  readonly replace: boolean;
  /** Make it the default profile. */
  readonly makeDefault: boolean;
  /** Answer yes to every question (register the scheme handler). */
  readonly yes: boolean;
  /** Never register the scheme handler. */
  readonly noScheme: boolean;
  /** A person is at the terminal. */
  readonly interactive: boolean;
  readonly json: boolean;
  /** The command, for messages ("profile add", "init"). */
  readonly command: string;
}

export interface SchemeOutcome {
  readonly scheme: string;
  /** registered before, registered now, or left for the user. */
  readonly state: 'already-registered' | 'registered' | 'not-registered';
}

export interface AddResult {
  readonly profile: string;
  readonly configPath: string;
  readonly replaced: boolean;
  readonly defaultProfile: string | undefined;
  readonly written: Record<string, unknown>;
  readonly check: ProviderCheckResult | null;
  readonly scheme: SchemeOutcome | null;
}

/** The CLI script, as the scheme handler runs it. */
function cliPath(): string {
  return path.resolve(fileURLToPath(new URL('./main.js', import.meta.url)));
}

export async function addProfile(options: AddOptions, context: CommandContext): Promise<AddResult> {
  const { file } = configLocation(options.config);
  const say = (text: string) => {
    if (!options.json) context.out(text);
  };
  const document = readConfigDocument(file);
  const exists = document.json['profiles'] !== undefined && Object.hasOwn(document.json['profiles'] as object, options.name);
  if (exists && !options.replace) {
    throw new BrokerError('BAD_REQUEST', `profiles.${options.name}: a profile with this name exists already in ${file} (pass --replace to overwrite it)`, {
      field: `profiles.${options.name}`,
    });
  }

  let written: Record<string, unknown>;
  if (anyProfileFlag(options.flags)) {
    written = profileFromFlags(options.flags);
  } else if (options.interactive) {
    const { runProfileWizard } = await import('./profile-wizard.js');
    written = await runProfileWizard(options.name);
  } else {
    written = {};
  }
  const missing = missingRequiredFlags(written);
  if (missing.length > 0) {
    throw new UsageError(`${options.command}: missing ${missing.join(' and ')} (no terminal to ask on; see "tokenbroker ${options.command} --help")`);
  }

  setProfile(document, options.name, written, { replace: true });
  if (options.makeDefault) setDefaultProfile(document, options.name);
  let config;
  try {
    config = validateDocument(document);
  } catch (error) {
    throw blameFlag(error, options.name, (field) => flagForField(field, options.name));
  }
  const resolved = config.profiles.get(options.name)!;

  let check: ProviderCheckResult | null = null;
  if (options.noCheck) say(`Provider check skipped (--no-check): ${resolved.issuer} was not contacted.`);
  else {
    say(`Checking the provider of ${options.name} (${resolved.issuer}) …`);
    check = await checkProvider(resolved);
    for (const line of formatCheck(check)) say(line);
    if (!check.ok) {
      const failed = check.steps.at(-1)!;
      throw new BrokerError(
        'IDP_ERROR',
        `provider check failed (${failed.step}): ${failed.detail}. Nothing was written; fix the settings, or pass --no-check to write anyway`,
        {
          field:
            failed.step === 'pkce'
              ? 'code_challenge_methods_supported'
              : `profiles.${options.name}.${resolved.provider === 'wristband' ? 'wristband' : 'issuer'}`,
        },
      );
    }
  }

  const scheme = await ensureScheme(resolved.redirectUri, options, say);
  // Applied to the file as it is now (another command may have changed it during the check).
  await editConfig(file, (current) => {
    setProfile(current, options.name, written, { replace: options.replace });
    if (options.makeDefault) setDefaultProfile(current, options.name);
  });
  say(`${exists ? 'Replaced' : 'Added'} profile ${options.name} in ${file}${config.defaultProfile === options.name ? ' (the default profile)' : ''}.`);
  return {
    profile: options.name,
    configPath: file,
    replaced: exists,
    defaultProfile: config.defaultProfile,
    written,
    check,
    scheme,
  };
}

/** RFC 8252 §7.1: a custom-scheme redirect reaches the broker only through the OS handler. */
async function ensureScheme(redirectUri: string, options: AddOptions, say: (text: string) => void): Promise<SchemeOutcome | null> {
  if (redirectUri === 'loopback' || /^https?:/i.test(redirectUri)) return null;
  const { registerScheme, schemeOf, schemeStatus } = await import('../scheme/index.js');
  const scheme = schemeOf(redirectUri);
  const status = await schemeStatus(scheme, { cliPath: cliPath() });
  if (status.registered) {
    say(`  ok    scheme    ${scheme}: handler registered`);
    return { scheme, state: 'already-registered' };
  }
  let register = options.yes && !options.noScheme;
  if (!register && !options.noScheme && options.interactive) {
    register = await askConfirm(`The redirect ${redirectUri} needs this tokenbroker registered as the handler of ${scheme}:. Register it now?`, true);
  }
  if (!register) {
    say(`  note  scheme    ${scheme}: no handler registered; sign-in cannot finish until you run: tokenbroker scheme register --scheme ${scheme}`);
    return { scheme, state: 'not-registered' };
  }
  await registerScheme(scheme, { cliPath: cliPath(), nodePath: process.execPath });
  const after = await schemeStatus(scheme, { cliPath: cliPath() });
  if (!after.registered) {
    throw new BrokerError(
      'INTERNAL',
      `registering the handler of ${scheme} did not take (${after.details}); try "tokenbroker scheme register --scheme ${scheme}"`,
    );
  }
  say(`  ok    scheme    ${scheme}: handler registered now`);
  return { scheme, state: 'registered' };
}
