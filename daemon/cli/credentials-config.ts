/**
 * The `credentials` section of the config file: which profile and user name the git credential helper
 * and the docker credential helper use for which host. Read by the CLI itself (the daemon ignores the
 * section), with the same file lookup as the daemon (README: Configuration):
 *
 * ```json
 * "credentials": {
 *   "git": [{ "host": "git.example.com", "profile": "work", "username": "oauth2" }],
 *   "docker": [{ "registry": "registry.example.com", "profile": "work", "username": "oauth2" }]
 * }
 * ```
 * Kept free of heavy imports: git runs the helper on every fetch and push.
 */
import { BrokerError } from '../../proto/errors.js';

export interface GitCredentialEntry {
  /** `host` or `host:port`, compared case-insensitively with what git sends. */
  readonly host: string;
  /** @default "https" (set "http" to send the token over plain HTTP, e.g. to 127.0.0.1) */
  readonly protocol: string;
  /** @default the daemon's default profile */
  readonly profile: string | undefined;
  /** @default "oauth2" */
  readonly username: string;
}

export interface DockerCredentialEntry {
  /** The registry's host (`registry.example.com`, `localhost:5000`), as docker names it in ServerURL. */
  readonly registry: string;
  readonly profile: string | undefined;
  /** @default "oauth2" */
  readonly username: string;
}

export interface CredentialsConfig {
  readonly git: readonly GitCredentialEntry[];
  readonly docker: readonly DockerCredentialEntry[];
}

export const DEFAULT_USERNAME = 'oauth2';
const PROFILE = /^[A-Za-z0-9._-]{1,64}$/;
const HOST = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

/** `--config`, else `$TOKENBROKER_CONFIG`, else the platform's config dir (the daemon's rule). */
export function configPath(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit) return explicit;
  if (env['TOKENBROKER_CONFIG']) return env['TOKENBROKER_CONFIG'];
  const home = process.getBuiltinModule('node:os').homedir();
  if (process.platform === 'darwin') return `${home}/Library/Application Support/tokenbroker/config.json`;
  if (process.platform === 'win32') return `${env['APPDATA'] ?? `${home}\\AppData\\Roaming`}\\tokenbroker\\config.json`;
  return `${env['XDG_CONFIG_HOME'] || `${home}/.config`}/tokenbroker/config.json`;
}

/** Reads the section; a missing file (or section) is an empty mapping, a broken one CONFIG_INVALID naming the field. */
export function loadCredentialsConfig(file: string): CredentialsConfig {
  let text: string;
  try {
    text = process.getBuiltinModule('node:fs').readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { git: [], docker: [] };
    throw new BrokerError('CONFIG_INVALID', `cannot read the config file ${file}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new BrokerError('CONFIG_INVALID', `${file} is not valid JSON: ${(error as Error).message}`);
  }
  try {
    return parseCredentials(isObject(json) ? json['credentials'] : undefined);
  } catch (error) {
    if (error instanceof BrokerError)
      throw new BrokerError('CONFIG_INVALID', `${file}: ${error.message}`, error.field === undefined ? {} : { field: error.field });
    throw error;
  }
}

export function parseCredentials(value: unknown): CredentialsConfig {
  if (value === undefined) return { git: [], docker: [] };
  const field = 'credentials';
  if (!isObject(value)) throw invalid(field, 'an object with "git" and/or "docker"');
  for (const key of Object.keys(value)) if (key !== 'git' && key !== 'docker') throw invalid(`${field}.${key}`, 'no such key (known: git, docker)');
  return {
    git: list(value['git'], `${field}.git`).map((entry, i) => {
      const at = `${field}.git[${i}]`;
      known(entry, at, ['host', 'protocol', 'profile', 'username']);
      return {
        host: text(entry['host'], `${at}.host`, HOST, 'a host or host:port').toLowerCase(),
        protocol: entry['protocol'] === undefined ? 'https' : text(entry['protocol'], `${at}.protocol`, /^https?$/, '"https" or "http"'),
        profile: entry['profile'] === undefined ? undefined : text(entry['profile'], `${at}.profile`, PROFILE, 'a profile name'),
        username:
          entry['username'] === undefined
            ? DEFAULT_USERNAME
            : text(entry['username'], `${at}.username`, /^[^\s:]{1,256}$/, 'a user name without spaces or ":"'),
      };
    }),
    docker: list(value['docker'], `${field}.docker`).map((entry, i) => {
      const at = `${field}.docker[${i}]`;
      known(entry, at, ['registry', 'profile', 'username']);
      return {
        registry: text(entry['registry'], `${at}.registry`, HOST, 'a registry host or host:port').toLowerCase(),
        profile: entry['profile'] === undefined ? undefined : text(entry['profile'], `${at}.profile`, PROFILE, 'a profile name'),
        username:
          entry['username'] === undefined
            ? DEFAULT_USERNAME
            : text(entry['username'], `${at}.username`, /^[^\s:]{1,256}$/, 'a user name without spaces or ":"'),
      };
    }),
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(field: string, expected: string): BrokerError {
  return new BrokerError('BAD_REQUEST', `${field}: expected ${expected}`, { field });
}

function list(value: unknown, field: string): Array<Record<string, unknown>> {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalid(field, 'an array');
  return value.map((entry, i) => {
    if (!isObject(entry)) throw invalid(`${field}[${i}]`, 'an object');
    return entry;
  });
}

function known(entry: Record<string, unknown>, field: string, keys: readonly string[]): void {
  for (const key of Object.keys(entry)) if (!keys.includes(key)) throw invalid(`${field}.${key}`, `no such key (known: ${keys.join(', ')})`);
}

function text(value: unknown, field: string, pattern: RegExp, expected: string): string {
  if (typeof value !== 'string' || !pattern.test(value)) throw invalid(field, expected);
  return value;
}
