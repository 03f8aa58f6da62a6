/**
 * `scheme:<profile>`: a profile that redirects to a custom scheme (RFC 8252 §7.1) needs this tokenbroker
 * registered as the OS handler of that scheme, or the browser's redirect after sign-in goes nowhere.
 */
import type { ProfileConfig } from '../config.js';
import { schemeOf, schemeStatus } from '../scheme/index.js';
import fs from 'node:fs';
import os from 'node:os';
import { linuxPaths } from '../scheme/linux.js';
import { missingPaths, pathsOfKey, REINSTALL_FIX } from './recorded-paths.js';
import { result, type CheckResult, type DoctorContext } from './types.js';

export function usesCustomScheme(profile: ProfileConfig): boolean {
  return profile.redirectUri !== 'loopback' && !/^https?:/i.test(profile.redirectUri);
}

export async function checkSchemeHandler(profile: ProfileConfig, context: DoctorContext): Promise<CheckResult> {
  const id = `scheme:${profile.name}`;
  const title = `scheme handler (${profile.name})`;
  if (!usesCustomScheme(profile)) {
    return result(id, title, 'skip', `loopback redirect (${profile.redirectUri}): no scheme handler needed`);
  }
  const scheme = schemeOf(profile.redirectUri);
  const status = await schemeStatus(scheme, { env: context.env });
  if (status.registered) {
    const gone = missingPaths(handlerPaths(scheme, context));
    if (gone.length > 0) {
      return result(
        id,
        title,
        'fail',
        `${scheme}: the registered handler runs ${gone.join(' and ')}, which no longer ${gone.length === 1 ? 'exists' : 'exist'}, so the sign-in redirect goes nowhere`,
        REINSTALL_FIX,
      );
    }
    return result(id, title, 'ok', `registered: ${status.details || scheme}`);
  }
  const config = context.configFromFlag ? ` --config ${context.configPath}` : '';
  return result(
    id,
    title,
    'fail',
    `${scheme}: not registered, so the sign-in redirect to ${profile.redirectUri} cannot reach tokenbroker${status.details ? ` (${status.details})` : ''}`,
    `tokenbroker scheme register --profile ${profile.name}${config}`,
  );
}

/** Linux: the absolute paths in the desktop entry's Exec= line. (macOS, Windows: not read back yet.) */
function handlerPaths(scheme: string, context: DoctorContext): string[] {
  if (process.platform === 'darwin' || process.platform === 'win32') return [];
  const file = linuxPaths(scheme, context.env, context.env['HOME'] || os.homedir()).desktopFile;
  try {
    // The desktop entry doubles backslashes (string escape) before Exec unquoting.
    return pathsOfKey(fs.readFileSync(file, 'utf8').replace(/\\\\/g, '\\'), 'Exec');
  } catch {
    return [];
  }
}
