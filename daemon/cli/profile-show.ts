/**
 * `tokenbroker profile list` and `profile show NAME`: the config file read and validated as the daemon
 * reads it (config.ts), so what is shown is what the daemon runs with.
 */
import { BrokerError, isPlainObject } from '../../proto/index.js';
import { loadConfig, type ProfileConfig } from '../config.js';
import { readConfigDocument } from '../config-write.js';
import { configLocation, noProfilesHint } from './profile-common.js';

export interface ProfileSummary {
  readonly name: string;
  readonly default: boolean;
  readonly provider: 'oidc' | 'wristband';
  readonly issuer: string;
  readonly clientId: string;
  readonly redirectUri: string;
  readonly scopes: readonly string[];
}

export interface ProfileList {
  readonly configPath: string;
  /** False when there is no config file yet. */
  readonly configExists: boolean;
  readonly defaultProfile: string | null;
  readonly profiles: readonly ProfileSummary[];
}

export function listProfiles(configFlag: string | undefined): ProfileList {
  const { file, explicit } = configLocation(configFlag);
  const config = loadConfig(file, { allowMissing: !explicit });
  return {
    configPath: file,
    configExists: config.path !== null,
    defaultProfile: config.defaultProfile ?? null,
    profiles: [...config.profiles.values()].map((p) => ({
      name: p.name,
      default: p.name === config.defaultProfile,
      provider: p.provider,
      issuer: p.issuer,
      clientId: p.clientId,
      redirectUri: p.redirectUri,
      scopes: p.scopes,
    })),
  };
}

export function formatList(list: ProfileList): string {
  if (list.profiles.length === 0) return `No profiles: ${noProfilesHint(list.configPath)}.`;
  const rows = list.profiles.map((p) => [`${p.default ? '* ' : '  '}${p.name}`, p.provider, p.issuer, p.clientId, p.redirectUri]);
  const header = ['  PROFILE', 'PROVIDER', 'ISSUER', 'CLIENT ID', 'REDIRECT'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const notes = [`config ${list.configPath}`];
  if (list.defaultProfile === null && list.profiles.length > 1) notes.push('no default profile: choose one with "tokenbroker profile use NAME"');
  return [line(header), ...rows.map(line), '', ...notes].join('\n');
}

export interface ProfileShown {
  readonly name: string;
  readonly default: boolean;
  readonly configPath: string;
  /** As written in the file. */
  readonly written: Record<string, unknown>;
  /** Every default filled in: what the daemon uses. */
  readonly resolved: ProfileConfig;
}

export function showProfile(name: string, configFlag: string | undefined): ProfileShown {
  const { file, explicit } = configLocation(configFlag);
  const config = loadConfig(file, { allowMissing: !explicit });
  const resolved = config.profiles.get(name);
  if (resolved === undefined) {
    throw new BrokerError(
      'PROFILE_NOT_FOUND',
      config.profiles.size === 0
        ? `no profile named "${name}": ${noProfilesHint(file)}`
        : `no profile named "${name}" in ${file} (profiles: ${[...config.profiles.keys()].join(', ')})`,
    );
  }
  const profiles = readConfigDocument(file).json['profiles'];
  const written = isPlainObject(profiles) && isPlainObject(profiles[name]) ? profiles[name] : {};
  return { name, default: config.defaultProfile === name, configPath: file, written, resolved };
}

/** `key  value` lines, `(default)` after values the file does not set. */
export function formatShow(shown: ProfileShown): string {
  const lines = [`profile ${shown.name}${shown.default ? ' (the default profile)' : ''}  —  ${shown.configPath}`];
  const width = 42;
  const walk = (value: unknown, written: unknown, prefix: string) => {
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      if (prefix === '' && (key === 'name' || key === 'provider')) continue;
      const w = isPlainObject(written) ? written[key] : undefined;
      const field = `${prefix}${key}`;
      if (isPlainObject(v) && Object.keys(v).length > 0) walk(v, w, `${field}.`);
      else
        lines.push(
          `  ${field.padEnd(width)} ${typeof v === 'string' ? v : JSON.stringify(v)}${w === undefined && !(prefix === '' && key === 'issuer' && shown.resolved.provider === 'wristband') ? '  (default)' : ''}`,
        );
    }
  };
  walk(shown.resolved, shown.written, '');
  return lines.join('\n');
}
