/**
 * What shell completion offers, read from the commands' own help text (so a new command or option is
 * completed as soon as its --help documents it): the commands of the command table, each command's
 * subcommands (`Usage: tokenbroker service install|uninstall|…`), its options (the Usage line and the
 * "Options:" list), and what an option's value is: a profile name (`--profile NAME`, listed at
 * completion time by `tokenbroker completion --profiles`), a file (FILE, PATH, DIR) or one of a list
 * ("one of token, header, json").
 */

export type ValueKind =
  { readonly kind: 'none' } | { readonly kind: 'profile' } | { readonly kind: 'file' } | { readonly kind: 'choice'; readonly choices: string[] };

export interface OptionSpec {
  readonly name: string;
  readonly value: ValueKind;
}

export interface CommandSpec {
  readonly name: string;
  readonly summary: string;
  readonly subcommands: string[];
  readonly options: OptionSpec[];
}

/** Reads one command's spec from its help text. */
export function commandSpec(name: string, summary: string, help: string): CommandSpec {
  const usage = /^Usage: .*(?:\n {2,}\S.*)*/m.exec(help)?.[0] ?? '';
  const subcommands = new RegExp(`tokenbroker ${escape(name)} ([a-z][a-z-]*(?:\\|[a-z][a-z-]*)+)`).exec(usage)?.[1]?.split('|') ?? [];
  const options = new Map<string, OptionSpec>();
  const add = (option: string, placeholder: string | undefined, line: string) => {
    if (options.has(option)) return;
    let value: ValueKind = { kind: 'none' };
    if (placeholder !== undefined) {
      const choices = /one of ((?:[a-z][a-z0-9-]*, )+[a-z][a-z0-9-]*)/.exec(line)?.[1];
      if (option === 'profile' && placeholder === 'NAME') value = { kind: 'profile' };
      else if (/^(FILE|PATH|DIR)$/.test(placeholder)) value = { kind: 'file' };
      else if (choices !== undefined) value = { kind: 'choice', choices: choices.split(', ') };
    }
    options.set(option, { name: option, value });
  };
  // "Options:" lines first (they carry "one of …"), then whatever the Usage line adds.
  for (const m of help.matchAll(/^ {2,}(?:-[a-zA-Z], )?--([a-z][a-z0-9-]*)(?:[ =]([A-Z][A-Z_]*))?(?=\s|$)(.*)$/gm)) add(m[1]!, m[2], m[3] ?? '');
  for (const m of usage.matchAll(/--([a-z][a-z0-9-]*)(?:[ =]([A-Z][A-Z_]*))?/g)) add(m[1]!, m[2], '');
  if (!options.has('help')) add('help', undefined, '');
  return { name, summary, subcommands, options: [...options.values()] };
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
