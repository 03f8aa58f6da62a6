/**
 * The absolute paths a service unit, a launchd agent or a scheme handler's desktop entry records (the
 * node binary, the CLI script). After a node upgrade (brew, nvm) or a move of the package one of them
 * can be gone: the service then fails to start and sign-in redirects go nowhere. `doctor` names it,
 * with the fix: write them again with "tokenbroker service install".
 */
import fs from 'node:fs';

export const REINSTALL_FIX = 'tokenbroker service install (writes the unit and the scheme handlers again with the node and tokenbroker of this shell)';

/**
 * Splits a command line as systemd's ExecStart= and the desktop entry's Exec= quote it: words separated
 * by spaces, "double quotes" with backslash escapes; `%%` is a literal `%`; field codes (%u) dropped.
 */
export function commandWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '\\' && i + 1 < line.length) word += line[++i];
      else if (c === '"') quoted = false;
      else word += c;
    } else if (c === '"') {
      quoted = inWord = true;
    } else if (c === ' ' || c === '\t') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words.filter((w) => !/^%[a-zA-Z]$/.test(w)).map((w) => w.replace(/%%/g, '%'));
}

/** The absolute paths in the value of `key=` lines (ExecStart, Exec) of a unit or desktop file. */
export function pathsOfKey(text: string, key: string): string[] {
  const line = new RegExp(`^${key}=(.*)$`, 'm').exec(text)?.[1];
  return line === undefined ? [] : commandWords(line).filter((w) => w.startsWith('/'));
}

/** The absolute paths among a launchd plist's ProgramArguments strings. */
export function plistProgramPaths(text: string): string[] {
  const array = /<key>ProgramArguments<\/key>\s*<array>([\s\S]*?)<\/array>/.exec(text)?.[1] ?? '';
  const unxml = (s: string) =>
    s
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)))
      .replace(/&amp;/g, '&');
  return [...array.matchAll(/<string>([^<]*)<\/string>/g)].map((m) => unxml(m[1]!)).filter((w) => w.startsWith('/'));
}

/** The recorded paths that no longer exist. */
export function missingPaths(paths: readonly string[]): string[] {
  return paths.filter((p) => !fs.existsSync(p));
}
