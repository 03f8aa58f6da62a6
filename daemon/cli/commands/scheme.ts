import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BrokerError } from '../../../proto/index.js';
import type { CommandContext } from '../context.js';
import { UsageError, parse } from '../usage.js';

export const help = `Usage: tokenbroker scheme register|unregister|status [--profile NAME | --scheme SCHEME]
                          [--config FILE] [--dry-run] [--json]

Registers this tokenbroker as the operating system's handler for a profile's custom redirect scheme
(e.g. com.example.broker), so that the provider's redirect after sign-in runs "tokenbroker callback <url>".

  Linux    a .desktop file in ~/.local/share/applications (MimeType=x-scheme-handler/<scheme>),
           made the default with xdg-mime
  macOS    a small AppleScript applet in ~/Applications declaring the scheme (CFBundleURLTypes),
           compiled with osacompile and registered with Launch Services
  Windows  HKCU\\Software\\Classes\\<scheme> registry entries

Options:
  --profile NAME   take the scheme from this profile's redirectUri (default: the default profile)
  --scheme SCHEME  name the scheme directly
  --config FILE    the config file (default: $TOKENBROKER_CONFIG or the platform's config dir)
  --dry-run        print the files and commands, change nothing
  --json           machine-readable report
  -h, --help       this help

Not needed for profiles with "redirectUri": "loopback".`;

export async function run(argv: string[], context: CommandContext): Promise<number> {
  const { values, positionals } = parse(
    'scheme',
    argv,
    { profile: { type: 'string' }, scheme: { type: 'string' }, config: { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } },
    true,
  );
  const action = positionals[0];
  if (positionals.length !== 1 || !['register', 'unregister', 'status'].includes(action!)) {
    throw new UsageError('scheme: expected one of register, unregister, status');
  }
  const scheme = values.scheme ?? (await schemeFromConfig(values.profile, values.config));
  const { registerScheme, unregisterScheme, schemeStatus } = await import('../../scheme/index.js');
  const cliPath = path.resolve(fileURLToPath(new URL('../main.js', import.meta.url)));
  const options = { cliPath, dryRun: values['dry-run'] ?? false }; // node: the path it was invoked through (system/node-path.ts)

  if (action === 'status') {
    const status = await schemeStatus(scheme, options);
    if (values.json) context.out(JSON.stringify(status, null, 2));
    else context.out(`${scheme}: ${status.registered ? 'registered' : 'not registered'}${status.details ? ` (${status.details})` : ''}`);
    return status.registered ? 0 : 1;
  }
  const report = action === 'register' ? await registerScheme(scheme, options) : await unregisterScheme(scheme, options);
  if (values.json) {
    context.out(JSON.stringify(report, null, 2));
    return 0;
  }
  const prefix = report.dryRun ? 'would ' : '';
  context.out(`${report.dryRun ? 'Dry run: ' : ''}${action} ${scheme} on ${report.platform}`);
  for (const file of report.filesWritten) {
    context.out(`  ${prefix}write ${file.path}`);
    if (report.dryRun) context.out(file.contents.replace(/^/gm, '      '));
  }
  for (const file of report.filesRemoved) context.out(`  ${prefix}remove ${file}`);
  const { formatCommand } = await import('../../system/run.js');
  for (const command of report.commands) {
    const outcome = command.skipped ? ` (skipped: ${command.skipped})` : command.ran ? ` (exit ${command.exitCode ?? 0})` : '';
    context.out(`  ${prefix}run ${formatCommand(command.argv)}${outcome}`);
  }
  for (const note of report.notes ?? []) context.out(`  note: ${note}`);
  return 0;
}

async function schemeFromConfig(profileName: string | undefined, configFile: string | undefined): Promise<string> {
  const { defaultConfigPath, loadConfig } = await import('../../config.js');
  const { schemeOf } = await import('../../scheme/index.js');
  // As for the daemon: a file named by --config or TOKENBROKER_CONFIG must exist; a missing default file
  // is an empty config (README, "Configuration").
  const explicit = configFile ?? (process.env['TOKENBROKER_CONFIG'] || undefined);
  const file = explicit ?? defaultConfigPath();
  const config = loadConfig(file, { allowMissing: explicit === undefined });
  const name = profileName ?? config.defaultProfile;
  const profile = name === undefined ? undefined : config.profiles.get(name);
  if (!profile) {
    const none = config.path === null ? ` (there is no config file at ${file})` : '';
    throw new BrokerError(
      'PROFILE_NOT_FOUND',
      name === undefined
        ? `name a profile with --profile or a scheme with --scheme${none}`
        : `no profile named "${name}"${none}; or name the scheme with --scheme`,
    );
  }
  if (profile.redirectUri === 'loopback' || /^https?:/.test(profile.redirectUri)) {
    throw new UsageError(`scheme: profile ${profile.name} uses a loopback redirect ("${profile.redirectUri}"), which needs no scheme handler`);
  }
  return schemeOf(profile.redirectUri);
}
