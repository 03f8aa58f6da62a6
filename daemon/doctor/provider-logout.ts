/**
 * What `tokenbroker logout` can and cannot do at a profile's provider: revoke the refresh token (RFC 7009)
 * and end the provider's browser session (OIDC RP-Initiated Logout). Part of the `provider:<profile>` check.
 */
import type { ProfileConfig } from '../config.js';
import type { ProviderMetadata } from '../oauth/index.js';

export interface LogoutLimits {
  /** What logout cannot do and what that means for the user. */
  readonly detail: string;
  readonly fix: string;
}

/** Undefined when logout can both revoke and end the provider session, and nothing odd was met in the metadata. */
export function logoutLimits(profile: ProfileConfig, metadata: ProviderMetadata): LogoutLimits | undefined {
  const problems: string[] = [];
  const fixes: string[] = [];
  const field = `profiles.${profile.name}`;
  if (metadata.revocationEndpoint === undefined) {
    problems.push(
      'logout cannot revoke: the provider offers no revocation endpoint (none in its OpenID discovery document or RFC 8414 metadata), ' +
        'so after logout the refresh token stays valid at the provider until it expires',
    );
    fixes.push(
      `if the provider documents a revocation endpoint, set ${field}.revocationEndpoint; otherwise remove the app's access in your account at the provider to end the grant`,
    );
  }
  if (metadata.endSessionEndpoint === undefined) {
    problems.push(
      'logout cannot end the provider session: the provider offers no end_session_endpoint, so the browser stays signed in at the provider ' +
        'and the next sign-in may not ask for a password',
    );
    fixes.push(`if the provider documents a logout endpoint, set ${field}.endSessionEndpoint; otherwise sign out on the provider's own site`);
  }
  for (const note of metadata.notes ?? []) problems.push(note);
  if (problems.length === 0) return undefined;
  return { detail: problems.join('; '), fix: fixes.length > 0 ? fixes.join('; ') : `check the provider's metadata, or ask its administrator` };
}
