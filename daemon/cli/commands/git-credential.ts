import { connect } from '../../../client/index.js';
import type { CommandContext } from '../context.js';
import { DEFAULT_USERNAME, configPath, loadCredentialsConfig } from '../credentials-config.js';
import { UsageError, parse } from '../usage.js';

export const help = `Usage: tokenbroker git-credential [--profile NAME] [--username NAME] [--config FILE] [--socket PATH] get|store|erase

A git credential helper (gitcredentials(7)): git runs it with the operation as its last argument and
the request on stdin (protocol=…, host=…, …; a blank line or end of input ends it).

  get    prints username=… and password=<access token> (and password_expiry_utc) for a known host
  erase  git's report that the server refused that password (HTTP 401): the token is reported as
         rejected, so the daemon refreshes and the next get brings a fresh one
  store  nothing to store: the daemon keeps the tokens
  (any other operation is ignored, as gitcredentials(7) asks of helpers)

Which hosts it answers: with --profile or --username (what "tokenbroker setup-git" writes, scoped to
one URL by git's credential.<url>.helper), every host git asks about; otherwise the hosts listed
under "credentials.git" in the config file:

  "credentials": { "git": [{ "host": "git.example.com", "profile": "work", "username": "oauth2" }] }

(protocol "https" unless the entry says "protocol": "http"; username default "${DEFAULT_USERNAME}").
For any other host it prints nothing and exits 0, and git goes on to its next helper.

Options:
  --profile NAME   the profile (default: the config entry's, else the daemon's default profile)
  --username NAME  the user name git sends with the token (default: "${DEFAULT_USERNAME}")
  --config FILE    the config file (default: as the daemon: $TOKENBROKER_CONFIG, then the usual path)
  --socket PATH    the daemon's socket
  -h, --help       this help

Errors go to stderr (git shows them) and git continues without a credential. Exit codes: 0 ok or
not our host, 1 error, 2 usage, 3 daemon not running, 5 login required (run "tokenbroker login"),
6 config invalid.`;

const OPERATIONS = ['get', 'store', 'erase'] as const;

export async function run(argv: string[], context: CommandContext): Promise<number> {
  const { values, positionals } = parse(
    'git-credential',
    argv,
    { profile: { type: 'string' }, username: { type: 'string' }, config: { type: 'string' } },
    true,
  );
  const operation = positionals[0];
  if (positionals.length !== 1) {
    throw new UsageError(`git-credential: expected one operation, get, store or erase; got ${JSON.stringify(positionals.join(' '))}`);
  }
  // gitcredentials(7): the input is read in full even when there is nothing to do (git writes it all).
  const request = parseRequest(await readStdin());
  // gitcredentials(7) "Custom helpers": any other operation is silently ignored (room for future ones).
  if (operation === 'store' || !(OPERATIONS as readonly string[]).includes(operation!)) return 0;

  let profile = values.profile;
  let username = values.username;
  if (profile === undefined && username === undefined) {
    const host = (request.get('host') ?? '').toLowerCase();
    const protocol = request.get('protocol') ?? '';
    const entry = loadCredentialsConfig(configPath(values.config)).git.find((e) => e.host === host && e.protocol === protocol);
    if (entry === undefined) return 0; // not ours: git asks its next helper
    profile = entry.profile;
    username = entry.username;
  }
  if (operation === 'erase' && request.get('password') === undefined) return 0;

  const client = await connect({ ...context.connectOptions(values.socket), clientName: 'tokenbroker-git', reconnect: false });
  try {
    const options = profile === undefined ? {} : { profile };
    if (operation === 'erase') {
      // The server refused this token: the daemon refreshes (once, however many report it).
      await client.getToken({ ...options, rejected: request.get('password')! });
      return 0;
    }
    const token = await client.getToken(options);
    context.out(
      [
        `username=${username ?? DEFAULT_USERNAME}`,
        `password=${token.accessToken}`,
        // git ≥ 2.41 stops using the credential after this (older versions ignore the key).
        `password_expiry_utc=${Math.floor(token.expiresAt / 1000)}`,
      ].join('\n'),
    );
    return 0;
  } finally {
    await client.close();
  }
}

/** `key=value` lines up to a blank line; a key given twice keeps its last value (arrays `key[]` are not needed here). */
export function parseRequest(input: string): Map<string, string> {
  const request = new Map<string, string>();
  for (const line of input.split('\n')) {
    if (line === '') break;
    const eq = line.indexOf('=');
    if (eq > 0) request.set(line.slice(0, eq), line.slice(eq + 1).replace(/\r$/, ''));
  }
  return request;
}

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk: string) => {
      data += chunk;
      if (data.length > 65_536) reject(new UsageError('git-credential: the request on stdin is over 64 KiB'));
    });
    process.stdin.once('end', () => resolve(data));
    process.stdin.once('error', reject);
  });
}
