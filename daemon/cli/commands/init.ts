import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandContext } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { PROFILE_FLAGS_HELP, PROFILE_FLAG_OPTIONS, anyProfileFlag } from '../profile-flags.js';
import { askConfirm, checkProfileName, configLocation, isInteractive, isPromptCancel } from '../profile-common.js';
import { UsageError, parse } from '../usage.js';

export const help = `Usage: tokenbroker init [NAME] [provider and client flags] [--yes] [--service | --no-service]
                        [--login | --no-login] [--no-check] [--replace] [--config FILE] [--socket PATH] [--json]

First-run setup, in order:
  1. adds one profile (NAME, default "main") to the config file and makes it the default — asked by
     a wizard on a terminal, or given as flags (as for "tokenbroker profile add"); the provider is
     checked first (discovery, JWKS, PKCE S256), nothing is written if it fails
  2. registers the custom-scheme handler when the redirect needs one
  3. offers to install the user service (tokenbroker service install), which starts the daemon
  4. offers to sign in (tokenbroker login)

Scriptable: with flags and --yes nothing is asked (steps 3 and 4 run unless --no-service /
--no-login). Without a terminal nothing is ever asked: a missing flag is an error naming it, and
steps 3 and 4 run only with --service / --login (or --yes).

${PROFILE_FLAGS_HELP}

Options:
  --yes            answer yes to every question (scheme handler, service, login)
  --service        install the user service      --no-service  do not
  --login          sign in at the end            --no-login    do not
  --no-check       do not contact the provider before writing (the check is skipped, and says so)
  --no-scheme      never register the scheme handler
  --replace        overwrite an existing profile of that name
  --config FILE    the config file (default: $TOKENBROKER_CONFIG or the platform's config dir)
  --socket PATH    the daemon's socket (for the sign-in)
  --json           one JSON report on stdout; never asks anything
  -h, --help       this help

Example (scripted):
  tokenbroker init work --issuer https://login.example.com --client-id my-cli --yes --no-login

Exit codes: 0 ok, 1 the provider check or the sign-in failed, 2 usage (a missing or wrong flag,
named), 3 the daemon is not running (for the sign-in), 6 the config file is invalid, 7 the service
manager refused the service, 130 cancelled.`;

const OPTIONS = {
  ...PROFILE_FLAG_OPTIONS,
  config: { type: 'string' },
  json: { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
  service: { type: 'boolean' },
  'no-service': { type: 'boolean' },
  login: { type: 'boolean' },
  'no-login': { type: 'boolean' },
  'no-check': { type: 'boolean' },
  'no-scheme': { type: 'boolean' },
  replace: { type: 'boolean' },
} as const;

interface StepResult {
  readonly ran: boolean;
  readonly exitCode?: number;
  /** The step's own --json output, when init ran with --json. */
  readonly result?: unknown;
}

export async function run(argv: string[], context: CommandContext): Promise<number> {
  const { values, positionals } = parse('init', argv, OPTIONS, true);
  if (positionals.length > 1) throw new UsageError(`init: unexpected argument ${JSON.stringify(positionals[1])} (one profile name at most)`);
  if (values.service && values['no-service']) throw new UsageError('init: --service and --no-service exclude each other');
  if (values.login && values['no-login']) throw new UsageError('init: --login and --no-login exclude each other');
  const json = values.json ?? false;
  const interactive = isInteractive(json);
  const say = (text: string) => {
    if (!json) context.out(text);
  };
  try {
    const { file } = configLocation(values.config);
    say(`tokenbroker init: config file ${file}`);
    let name = positionals[0];
    if (name === undefined && interactive && !anyProfileFlag(values)) {
      const { askProfileName } = await import('../profile-wizard.js');
      name = await askProfileName('main');
    }
    const { addProfile } = await import('../profile-add.js');
    const added = await addProfile(
      {
        name: checkProfileName(name ?? 'main', 'init'),
        flags: values,
        config: values.config,
        noCheck: values['no-check'] ?? false,
        replace: values.replace ?? false,
        makeDefault: true,
        yes: values.yes ?? false,
        noScheme: values['no-scheme'] ?? false,
        interactive,
        json,
        command: 'init',
      },
      context,
    );
    const configArgs = values.config === undefined ? [] : ['--config', values.config];
    const socketArgs = values.socket === undefined ? [] : ['--socket', values.socket];

    const decide = async (yesFlag: boolean | undefined, noFlag: boolean | undefined, question: string): Promise<boolean> => {
      if (noFlag) return false;
      if (yesFlag || values.yes) return true;
      return interactive ? askConfirm(question, true) : false;
    };

    let service: StepResult = { ran: false };
    if (await decide(values.service, values['no-service'], 'Install the user service (starts the daemon now and at every login)?')) {
      service = await runStep(['service', 'install', ...configArgs], json);
      if (service.exitCode !== 0) return finish(context, json, added, service, { ran: false }, service.exitCode ?? EXIT.ERROR);
    } else say('Next: "tokenbroker service install" (or run "tokenbroker daemon" yourself).');

    let login: StepResult = { ran: false };
    if (await decide(values.login, values['no-login'], `Sign in to ${added.profile} now?`)) {
      login = await runStep(['login', '--profile', added.profile, ...socketArgs], json);
      if (login.exitCode !== 0) return finish(context, json, added, service, login, login.exitCode ?? EXIT.ERROR);
    } else say(`Then: "tokenbroker login${added.defaultProfile === added.profile ? '' : ` --profile ${added.profile}`}".`);
    return finish(context, json, added, service, login, EXIT.OK);
  } catch (error) {
    if (isPromptCancel(error)) {
      context.err('tokenbroker: cancelled.');
      return EXIT.CANCELLED;
    }
    throw error;
  }
}

function finish(context: CommandContext, json: boolean, profile: unknown, service: StepResult, login: StepResult, code: number): number {
  if (json) context.out(JSON.stringify({ profile, service, login }, null, 2));
  return code;
}

/** Runs another tokenbroker command as its own process: its output is the user's (or, with --json, collected). */
function runStep(args: readonly string[], json: boolean): Promise<StepResult> {
  const cli = path.resolve(fileURLToPath(new URL('../main.js', import.meta.url)));
  const child = spawn(process.execPath, [cli, ...args, ...(json ? ['--json'] : [])], { stdio: json ? ['ignore', 'pipe', 'inherit'] : 'inherit' });
  let stdout = '';
  // Ctrl-C reaches the step too (same process group): it cancels its own work and exits 130, and so do we.
  const ignore = () => {};
  process.on('SIGINT', ignore);
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      process.off('SIGINT', ignore);
      const exitCode = code ?? (signal === 'SIGINT' ? EXIT.CANCELLED : EXIT.ERROR);
      let result: unknown;
      try {
        result = json && stdout.trim() !== '' ? JSON.parse(stdout) : undefined;
      } catch {
        result = stdout;
      }
      resolve({ ran: true, exitCode, ...(result === undefined ? {} : { result }) });
    });
  });
}
