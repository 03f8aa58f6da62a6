/**
 * `scheme:<profile>`: a profile that redirects to a custom scheme (RFC 8252 §7.1) needs this tokenbroker
 * registered as the OS handler of that scheme, or the browser's redirect after sign-in goes nowhere.
 */
import type { ProfileConfig } from '../config.js';
import { schemeOf, schemeStatus } from '../scheme/index.js';
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
  if (status.registered) return result(id, title, 'ok', `registered: ${status.details || scheme}`);
  const config = context.configFromFlag ? ` --config ${context.configPath}` : '';
  return result(
    id,
    title,
    'fail',
    `${scheme}: not registered, so the sign-in redirect to ${profile.redirectUri} cannot reach tokenbroker${status.details ? ` (${status.details})` : ''}`,
    `tokenbroker scheme register --profile ${profile.name}${config}`,
  );
}
