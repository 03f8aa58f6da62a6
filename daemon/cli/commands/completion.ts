import type { CommandContext } from '../context.js';
import { UsageError, parse } from '../usage.js';

export const help = `Usage: tokenbroker completion bash|zsh|fish
       tokenbroker completion --profiles [--config FILE]

Prints the shell completion script: commands, their subcommands and options, and the profile names
of the config file (looked up when you press Tab, so they follow the config).

  bash  tokenbroker completion bash > ~/.local/share/bash-completion/completions/tokenbroker
        (or in ~/.bashrc: source <(tokenbroker completion bash))
  zsh   tokenbroker completion zsh > "\${fpath[1]}/_tokenbroker", then start a new shell
        (or in ~/.zshrc, after compinit: source <(tokenbroker completion zsh))
  fish  tokenbroker completion fish > ~/.config/fish/completions/tokenbroker.fish

Options:
  --profiles     print the configured profile names, one a line (what the scripts call)
  --config FILE  the config file for --profiles (default: $TOKENBROKER_CONFIG or the platform's config dir)
  -h, --help     this help`;

export async function run(argv: string[], context: CommandContext): Promise<number> {
  const { values, positionals } = parse('completion', argv, { profiles: { type: 'boolean' }, config: { type: 'string' } }, true);
  if (values.profiles) {
    const { defaultConfigPath, loadConfig } = await import('../../config.js');
    const file = values.config ?? (process.env['TOKENBROKER_CONFIG'] || defaultConfigPath(process.env));
    try {
      for (const name of loadConfig(file, { allowMissing: true }).profiles.keys()) context.out(name);
    } catch {
      // completion must never print an error into the command line being edited: no names
    }
    return 0;
  }
  const { SHELLS, completionScript } = await import('../completion-scripts.js');
  const shell = positionals[0];
  if (positionals.length !== 1 || !(SHELLS as readonly string[]).includes(shell!)) {
    throw new UsageError(`completion: expected one of ${SHELLS.join(', ')}${shell === undefined ? '' : `, got "${shell}"`}`);
  }
  const { commandSpec } = await import('../completion-spec.js');
  const table = context.commands ?? {};
  const specs = await Promise.all(Object.entries(table).map(async ([name, entry]) => commandSpec(name, entry.summary, (await entry.load()).help)));
  process.stdout.write(completionScript(shell as (typeof SHELLS)[number], specs));
  return 0;
}
