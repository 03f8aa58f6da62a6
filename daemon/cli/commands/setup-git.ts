import { execFileSync } from 'node:child_process';
import type { CommandContext } from '../context.js';
import { DEFAULT_USERNAME } from '../credentials-config.js';
import { UsageError, parse } from '../usage.js';

export const help = `Usage: tokenbroker setup-git --host URL [--profile NAME] [--username NAME] [--dry-run]

Makes tokenbroker git's credential helper for one URL, in your global git config:

  git config --global --replace-all credential.<URL>.helper ''       (no other helper for this URL)
  git config --global --add credential.<URL>.helper '!<node> <cli> git-credential --username NAME [--profile P]'

URL is the scheme and host (and port, and a path prefix if you want one), e.g. https://git.example.com.
Running it again replaces the previous setting.

Options:
  --host URL       the remote's URL prefix (https://…; http:// only for 127.0.0.1 or localhost)
  --profile NAME   the profile (default: the daemon's default profile)
  --username NAME  the user name sent with the token (default: "${DEFAULT_USERNAME}"; GitHub-style hosts
                   often want "x-access-token")
  --dry-run        print the git commands instead of running them
  -h, --help       this help

Exit codes: 0 ok, 1 git failed, 2 usage.`;

/** Single quotes for git's `!` helper, which runs through the shell. */
const sq = (value: string) => `'${value.replaceAll("'", `'\\''`)}'`;

// eslint-disable-next-line @typescript-eslint/require-await -- async like every command's run(), so that its usage errors reject
export async function run(argv: string[], context: CommandContext): Promise<number> {
  const { values } = parse('setup-git', argv, {
    host: { type: 'string' },
    profile: { type: 'string' },
    username: { type: 'string' },
    'dry-run': { type: 'boolean' },
  });
  if (values.host === undefined) throw new UsageError('setup-git: --host URL is required, e.g. --host https://git.example.com');
  let url: URL;
  try {
    url = new URL(values.host);
  } catch {
    throw new UsageError(`setup-git: --host must be a URL such as https://git.example.com, got ${JSON.stringify(values.host)}`);
  }
  const loopback = url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]';
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new UsageError(`setup-git: --host must use https (http only for 127.0.0.1/localhost), got ${url.protocol}`);
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new UsageError('setup-git: --host must not carry a user, password, query or fragment');
  }
  if (values.profile !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(values.profile)) throw new UsageError('setup-git: --profile is not a profile name');
  const username = values.username ?? DEFAULT_USERNAME;
  if (!/^[^\s:]{1,256}$/.test(username)) throw new UsageError('setup-git: --username must not contain spaces or ":"');

  const prefix = `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '')}`;
  const key = `credential.${prefix}.helper`;
  const cli = process.argv[1]!;
  const helper = `!${sq(process.execPath)} ${sq(cli)} git-credential --username ${sq(username)}${values.profile === undefined ? '' : ` --profile ${sq(values.profile)}`}`;
  const commands = [
    ['config', '--global', '--replace-all', key, ''],
    ['config', '--global', '--add', key, helper],
  ];
  if (values['dry-run']) {
    for (const args of commands) context.out(`git ${args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : sq(a))).join(' ')}`);
    return 0;
  }
  for (const args of commands) {
    try {
      execFileSync('git', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (error) {
      context.err(
        `tokenbroker: setup-git: git ${args.slice(0, 3).join(' ')} failed: ${((error as { stderr?: Buffer }).stderr ?? '').toString().trim() || (error as Error).message}`,
      );
      return 1;
    }
  }
  context.err(`git now asks tokenbroker for ${prefix} (${key})`);
  return 0;
}
