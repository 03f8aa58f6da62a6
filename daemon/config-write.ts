/**
 * Changing the config file from the command line (`tokenbroker profile …`, `tokenbroker init`).
 *
 * Every write is atomic: the new text goes to a temp file in the same directory, is flushed to disk
 * (fsync), and then renamed over the old file (rename(2) replaces the name in one step on the same file
 * system), and the directory is flushed too. A process killed at any moment leaves the old file or the
 * new one, never a mix. The file is written with mode 0600; a missing directory is created 0700.
 *
 * Edits keep the rest of the document as it was: other profiles, the `credentials` section, key order
 * and the indentation. The whole new document is validated with the daemon's own rules (config.ts)
 * before anything is written, so a write never leaves a file the daemon would refuse.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BrokerError, isPlainObject } from '../proto/index.js';
import { parseConfig, type BrokerConfig } from './config.js';

/** The raw JSON document of a config file, plus what is needed to write it back the same way. */
export interface ConfigDocument {
  /** The path as given. */
  readonly file: string;
  /** False when there is no file yet (the document is then `{}`). */
  readonly exists: boolean;
  /** The parsed JSON, edited in place by the functions below. */
  readonly json: Record<string, unknown>;
  /** The indentation found in the file (two spaces for a new one). */
  readonly indent: string | number;
}

const TEMP_MARK = '.tmp-';

/**
 * Writes `text` to `file` atomically (temp file in the same directory, fsync, rename, fsync of the
 * directory), mode 0600. A symlink is followed: its target is replaced, the link stays.
 */
export function writeFileAtomic(file: string, text: string): void {
  const target = resolveTarget(file);
  const dir = path.dirname(target);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  removeStaleTemps(target);
  const temp = path.join(dir, `.${path.basename(target)}${TEMP_MARK}${process.pid}-${randomBytes(6).toString('hex')}`);
  // "wx": never follow or reuse an existing name; 0600 before a single byte is in it.
  const fd = fs.openSync(temp, 'wx', 0o600);
  try {
    try {
      fs.fchmodSync(fd, 0o600); // whatever the umask
      const buffer = Buffer.from(text, 'utf8');
      let written = 0;
      while (written < buffer.length) written += fs.writeSync(fd, buffer, written, buffer.length - written);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, target);
  } catch (error) {
    fs.rmSync(temp, { force: true });
    throw new BrokerError('INTERNAL', `cannot write the config file ${target}: ${(error as Error).message}`, { cause: error });
  }
  fsyncDirectory(dir);
}

function resolveTarget(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    return path.resolve(file); // no file yet
  }
}

function fsyncDirectory(dir: string): void {
  if (process.platform === 'win32') return; // directories cannot be opened for fsync there
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Temp files left by a writer that was killed (its pid is gone) are removed by the next write. */
function removeStaleTemps(target: string): void {
  const dir = path.dirname(target);
  const prefix = `.${path.basename(target)}${TEMP_MARK}`;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && !processAlive(pid)) fs.rmSync(path.join(dir, name), { force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Reads the config file for editing. A missing file is an empty document; a file that is not a JSON
 * object is CONFIG_INVALID (it is never overwritten: the user fixes it first).
 */
export function readConfigDocument(file: string): ConfigDocument {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { file, exists: false, json: {}, indent: 2 };
    throw new BrokerError('CONFIG_INVALID', `cannot read the config file ${file}: ${(error as Error).message}`);
  }
  if (text.trim() === '') return { file, exists: true, json: {}, indent: 2 };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new BrokerError('CONFIG_INVALID', `${file} is not valid JSON (${(error as Error).message}); fix it by hand first, nothing was changed`);
  }
  if (!isPlainObject(json)) throw new BrokerError('CONFIG_INVALID', `${file}: expected a JSON object; fix it by hand first, nothing was changed`);
  return { file, exists: true, json, indent: detectIndent(text) };
}

/** The indentation of the first indented line: a tab, or a number of spaces. */
export function detectIndent(text: string): string | number {
  const match = /^\{\s*?\n([ \t]+)\S/.exec(text) ?? /\n([ \t]+)\S/.exec(text);
  if (match === null) return 2;
  const indent = match[1]!;
  return indent.includes('\t') ? '\t' : indent.length;
}

/** The text a document is written as (with a final newline). */
export function serialize(document: ConfigDocument): string {
  return `${JSON.stringify(document.json, null, document.indent)}\n`;
}

/** Validates the document as the daemon would (CONFIG_INVALID naming the field) and returns the result. */
export function validateDocument(document: ConfigDocument): Omit<BrokerConfig, 'path'> {
  return parseConfig(document.json);
}

/** Validates, then writes atomically. */
export function saveConfigDocument(document: ConfigDocument): Omit<BrokerConfig, 'path'> {
  const config = validateDocument(document);
  writeFileAtomic(document.file, serialize(document));
  return config;
}

/**
 * Read, change and write the config under a lock (`<file>.lock`, created exclusively, holding the pid),
 * so that two commands changing it at once do not lose each other's change. A lock whose process is
 * gone (killed) is taken over; a live one is waited for up to `waitMs`, then CONFIG_INVALID names it.
 */
export async function editConfig<T>(file: string, change: (document: ConfigDocument) => T, options: { readonly waitMs?: number } = {}): Promise<T> {
  const target = resolveTarget(file);
  fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
  const lock = `${target}.lock`;
  const deadline = Date.now() + (options.waitMs ?? 10_000);
  for (;;) {
    try {
      const fd = fs.openSync(lock, 'wx', 0o600);
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const content = readOrEmpty(lock);
    const holder = Number(content);
    const alive = content !== '' && Number.isInteger(holder) && holder > 0 && processAlive(holder);
    // A lock of a process that is gone is taken over. An empty one is being written right now, unless it
    // is old (its writer was killed before writing its pid).
    if (!alive && (content !== '' || ageMs(lock) > 2_000) && readOrEmpty(lock) === content) fs.rmSync(lock, { force: true });
    else if (Date.now() > deadline) {
      throw new BrokerError(
        'CONFIG_INVALID',
        `another tokenbroker (pid ${holder || 'unknown'}) is changing ${target}; try again when it is done (or remove ${lock})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  try {
    const document = readConfigDocument(file);
    const result = change(document);
    saveConfigDocument(document);
    return result;
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

function ageMs(file: string): number {
  try {
    return Date.now() - fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function readOrEmpty(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** The `profiles` object of the document (created when missing). */
function profilesOf(document: ConfigDocument): Record<string, unknown> {
  const existing = document.json['profiles'];
  if (existing === undefined) {
    const profiles: Record<string, unknown> = {};
    document.json['profiles'] = profiles;
    return profiles;
  }
  if (!isPlainObject(existing)) {
    throw new BrokerError('CONFIG_INVALID', `${document.file}: profiles: expected an object of profiles`, { field: 'profiles' });
  }
  return existing;
}

export function profileNames(document: ConfigDocument): string[] {
  const profiles = document.json['profiles'];
  return isPlainObject(profiles) ? Object.keys(profiles) : [];
}

/**
 * Sets profile `name` to `profile` (as written in the file). Refuses to replace an existing one unless
 * `replace`. Other profiles and sections are untouched.
 */
export function setProfile(document: ConfigDocument, name: string, profile: Record<string, unknown>, options: { readonly replace?: boolean } = {}): void {
  const profiles = profilesOf(document);
  if (Object.hasOwn(profiles, name) && !options.replace) {
    throw new BrokerError('BAD_REQUEST', `profiles.${name}: a profile with this name exists already (pass --replace to overwrite it)`, {
      field: `profiles.${name}`,
    });
  }
  profiles[name] = profile;
}

/** Removes profile `name`; a `defaultProfile` naming it is removed too. Returns whether that happened. */
export function removeProfile(document: ConfigDocument, name: string): { readonly wasDefault: boolean } {
  const profiles = profilesOf(document);
  if (!Object.hasOwn(profiles, name)) {
    throw new BrokerError('PROFILE_NOT_FOUND', `no profile named "${name}" in ${document.file} (profiles: ${Object.keys(profiles).join(', ') || 'none'})`);
  }
  delete profiles[name];
  const wasDefault = document.json['defaultProfile'] === name;
  if (wasDefault) delete document.json['defaultProfile'];
  return { wasDefault };
}

/** Makes `name` the default profile. */
export function setDefaultProfile(document: ConfigDocument, name: string): void {
  if (!profileNames(document).includes(name)) {
    throw new BrokerError('PROFILE_NOT_FOUND', `no profile named "${name}" in ${document.file} (profiles: ${profileNames(document).join(', ') || 'none'})`);
  }
  document.json['defaultProfile'] = name;
}
