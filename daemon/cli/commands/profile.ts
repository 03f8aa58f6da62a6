import type { CommandContext } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { PROFILE_FLAGS_HELP, PROFILE_FLAG_OPTIONS } from '../profile-flags.js';
import { askConfirm, checkProfileName, isInteractive, isPromptCancel } from '../profile-common.js';
import { UsageError, parse } from '../usage.js';

export const help = `Usage: tokenbroker profile add NAME [provider and client flags] [--default] [--replace] [--no-check]
                                [--yes] [--no-scheme] [--config FILE] [--json]
       tokenbroker profile list [--config FILE] [--json]
       tokenbroker profile show NAME [--config FILE] [--json]
       tokenbroker profile use NAME [--config FILE] [--json]
       tokenbroker profile remove NAME [--yes] [--config FILE] [--socket PATH] [--json]

Manages the profiles in the config file without an editor. Every change is written atomically (a temp
file in the same directory, flushed, then renamed over the file; mode 0600): other profiles and
sections stay as they were. A running daemon picks the change up by watching the file.

  add     adds a profile. On a terminal without provider flags, a wizard asks for everything.
          Before writing, the provider is checked for real: discovery (for Wristband its endpoints),
          the JWKS, and PKCE S256 in code_challenge_methods_supported; for a custom-scheme redirect,
          that this tokenbroker is the scheme's handler (it offers to register it).
  list    the profiles, the default one marked
  show    one profile with every default filled in (--json: as written and as resolved)
  use     makes NAME the default profile (used when a request names none)
  remove  signs NAME out first (through the daemon when it runs: keychain entry deleted, refresh
          token revoked; else the keychain entry is deleted and its refresh token revoked
          directly), then removes it.
          Asks first on a terminal; --yes to skip the question (required without a terminal).

${PROFILE_FLAGS_HELP}

Options of add:
  --default        make it the default profile
  --replace        overwrite an existing profile of that name
  --no-check       do not contact the provider before writing (the check is skipped, and says so)
  --yes            answer yes to questions (registers the scheme handler when needed)
  --no-scheme      never register the scheme handler
Common options:
  --config FILE    the config file (default: $TOKENBROKER_CONFIG or the platform's config dir)
  --json           machine-readable output; never asks anything
  --socket PATH    remove: the daemon's socket
  -h, --help       this help

Examples:
  tokenbroker profile add work --issuer https://login.example.com --client-id my-cli --redirect loopback
  tokenbroker profile add acme --wristband-domain myapp-mycompany.us.wristband.dev --tenant acme \\
      --client-id abc123 --redirect com.example.broker:/callback --yes

Exit codes: 0 ok, 1 the provider check failed (nothing written) or another error, 2 usage (a wrong
flag or value, named), 6 the config file is invalid (fix it first; nothing was written),
130 cancelled at a question.`;

const OPTIONS = {
  ...PROFILE_FLAG_OPTIONS,
  config: { type: 'string' },
  json: { type: 'boolean' },
  default: { type: 'boolean' },
  replace: { type: 'boolean' },
  'no-check': { type: 'boolean' },
  'no-scheme': { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
} as const;

export async function run(argv: string[], context: CommandContext): Promise<number> {
  const { values, positionals } = parse('profile', argv, OPTIONS, true);
  const [action, name, ...extra] = positionals;
  if (action === undefined || !['add', 'list', 'show', 'use', 'remove'].includes(action)) {
    throw new UsageError('profile: expected one of add, list, show, use, remove');
  }
  if (extra.length > 0) throw new UsageError(`profile ${action}: unexpected argument ${JSON.stringify(extra[0])}`);
  const json = values.json ?? false;
  const out = (value: unknown) => context.out(JSON.stringify(value, null, 2));
  try {
    switch (action) {
      case 'add': {
        const { addProfile } = await import('../profile-add.js');
        const result = await addProfile(
          {
            name: checkProfileName(name, 'profile add'),
            flags: values,
            config: values.config,
            noCheck: values['no-check'] ?? false,
            replace: values.replace ?? false,
            makeDefault: values.default ?? false,
            yes: values.yes ?? false,
            noScheme: values['no-scheme'] ?? false,
            interactive: isInteractive(json),
            json,
            command: 'profile add',
          },
          context,
        );
        if (json) out(result);
        return EXIT.OK;
      }
      case 'list': {
        if (name !== undefined) throw new UsageError('profile list: takes no profile name (use "profile show NAME")');
        const { listProfiles, formatList } = await import('../profile-show.js');
        const list = listProfiles(values.config);
        if (json) out(list);
        else context.out(formatList(list));
        return EXIT.OK;
      }
      case 'show': {
        const { showProfile, formatShow } = await import('../profile-show.js');
        const shown = showProfile(checkProfileName(name, 'profile show'), values.config);
        if (json) out(shown);
        else context.out(formatShow(shown));
        return EXIT.OK;
      }
      case 'use': {
        const profile = checkProfileName(name, 'profile use');
        const { editConfig, setDefaultProfile } = await import('../../config-write.js');
        const { configLocation } = await import('../profile-common.js');
        const { file } = configLocation(values.config);
        await editConfig(file, (document) => setDefaultProfile(document, profile));
        if (json) out({ defaultProfile: profile, configPath: file });
        else context.out(`${profile} is now the default profile (${file}).`);
        return EXIT.OK;
      }
      default: {
        const profile = checkProfileName(name, 'profile remove');
        if (!values.yes) {
          if (!isInteractive(json)) throw new UsageError(`profile remove: pass --yes to remove ${profile} (there is no terminal to ask on)`);
          if (!(await askConfirm(`Sign ${profile} out and remove it from the config?`, false))) {
            context.err('Nothing was changed.');
            return EXIT.ERROR;
          }
        }
        const { removeProfileCommand } = await import('../profile-remove.js');
        const result = await removeProfileCommand(profile, { config: values.config, socket: values.socket }, context);
        if (json) out(result);
        else {
          const s = result.signOut;
          const how =
            s.via === 'daemon'
              ? `signed out through the daemon (keychain: ${s.keychainCleared ? 'tokens deleted' : 'no tokens were stored'}; revocation: ${s.revoked ? 'refresh token revoked' : `not revoked (${s.revokeError ?? 'no refresh token'})`})`
              : `the daemon is not running or does not know it: keychain entry ${s.keychainCleared ? 'deleted' : 'absent'}; revocation: ${s.revoked ? 'refresh token revoked' : `not revoked (${s.revokeError ?? 'unknown reason'})`}`;
          context.out(`Removed profile ${profile} from ${result.configPath}: ${how}.`);
          if (result.wasDefault) context.out(`It was the default profile; choose another with "tokenbroker profile use NAME".`);
        }
        return EXIT.OK;
      }
    }
  } catch (error) {
    if (isPromptCancel(error)) {
      context.err('tokenbroker: cancelled; nothing was written.');
      return EXIT.CANCELLED;
    }
    throw error;
  }
}
