import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { connect } from '../../../client/index.js';
import type { CommandContext } from '../context.js';
import { ENV_NAMES } from '../token-format.js';
import { UsageError, parse } from '../usage.js';

export const help = `Usage: tokenbroker exec [--profile NAME] [--env NAME] [--min-valid SECONDS] [--scope SCOPE]… [--resource URI]…
                       [--socket PATH] -- COMMAND [ARGS…]

Runs COMMAND with a valid access token in an environment variable, so the token never appears on a
command line (where other users could see it with ps):

  tokenbroker exec -- sh -c 'curl -H "Authorization: Bearer $TOKENBROKER_ACCESS_TOKEN" https://api.example.com/me'

The command's stdin, stdout and stderr are its own: tokenbroker prints nothing on stdout. SIGINT,
SIGTERM and SIGHUP are passed on to the command. The token is fetched once, before the command
starts; a long-running command should ask again (tokenbroker token, or the client library).

Options:
  --profile NAME       the profile (default: the configured default profile)
  --env NAME           the variable to set (default: ${ENV_NAMES.accessToken})
  --min-valid SECONDS  refresh first when less is left (default: the profile's refresh.minValidSeconds)
  --scope SCOPE        a token with only this granted scope (repeatable; see tokenbroker token --help)
  --resource URI       a token for this API (RFC 8707 resource indicator; repeatable)
  --socket PATH        the daemon's socket
  -h, --help           this help

Exit codes: the command's own; 128+N when a signal N ended it; 126 the command cannot be run,
127 not found; before the command starts: 2 usage, 3 daemon not running, 5 login required.`;

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export async function run(argv: string[], context: CommandContext): Promise<number> {
  const dashes = argv.indexOf('--');
  if (dashes === -1) throw new UsageError('exec: put the command after "--", e.g. tokenbroker exec -- curl …');
  const [file, ...args] = argv.slice(dashes + 1);
  if (file === undefined) throw new UsageError('exec: no command after "--"');
  const { values } = parse('exec', argv.slice(0, dashes), {
    profile: { type: 'string' },
    env: { type: 'string' },
    'min-valid': { type: 'string' },
    scope: { type: 'string', multiple: true },
    resource: { type: 'string', multiple: true },
  });
  const name = values.env ?? ENV_NAMES.accessToken;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new UsageError(`exec: --env must be a variable name (letters, digits, _), got ${JSON.stringify(name)}`);
  let minValidSeconds: number | undefined;
  if (values['min-valid'] !== undefined) {
    minValidSeconds = Number(values['min-valid']);
    if (!Number.isInteger(minValidSeconds) || minValidSeconds < 0 || minValidSeconds > 3600) {
      throw new UsageError(`exec: --min-valid must be a whole number of seconds from 0 to 3600, got ${JSON.stringify(values['min-valid'])}`);
    }
  }

  const selection = values.scope === undefined && values.resource === undefined ? {} : (await import('../token-selection.js')).tokenSelection('exec', values);

  const client = await connect({ ...context.connectOptions(values.socket), clientName: 'tokenbroker-exec', reconnect: false });
  let accessToken: string;
  try {
    ({ accessToken } = await client.getToken({
      ...(values.profile === undefined ? {} : { profile: values.profile }),
      ...(minValidSeconds === undefined ? {} : { minValidSeconds }),
      ...selection,
    }));
  } finally {
    await client.close();
  }

  return new Promise<number>((resolve) => {
    // Handlers first: a signal that arrives while the command is being started is passed on once it exists.
    let child: ReturnType<typeof spawn> | undefined = undefined;
    let early: NodeJS.Signals | undefined;
    const forward = (signal: NodeJS.Signals) => {
      if (child === undefined) early = signal;
      else if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    };
    for (const signal of FORWARDED) process.on(signal, forward);
    child = spawn(file, args, { stdio: 'inherit', env: { ...process.env, [name]: accessToken } });
    if (early !== undefined) child.kill(early);
    const done = (code: number) => {
      for (const signal of FORWARDED) process.off(signal, forward);
      resolve(code);
    };
    child.once('error', (error: NodeJS.ErrnoException) => {
      // The shell's conventions: 127 not found, 126 found but not runnable.
      const notFound = error.code === 'ENOENT';
      context.err(`tokenbroker: exec: ${notFound ? 'command not found' : 'cannot run the command'}: ${file} (${error.code ?? error.message})`);
      done(notFound ? 127 : 126);
    });
    child.once('exit', (code, signal) => {
      done(code ?? 128 + (signal === null ? 0 : (constants.signals[signal] ?? 0)));
    });
  });
}
