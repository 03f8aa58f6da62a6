/**
 * First run: `status`, `login` and `token` against a daemon that has no profiles say where the config
 * file is and which command adds a profile, instead of only "no profiles are configured".
 */
import type { BrokerClient } from '../../client/index.js';
import { BrokerError } from '../../proto/errors.js'; // not the barrel: start-up time

/** The line shown when there are no profiles; `configPath` is the daemon's file, or where it would be. */
export function noProfilesMessage(configPath: string): string {
  return `no profiles are configured (config file: ${configPath}); add one with "tokenbroker init", or "tokenbroker profile add NAME --issuer URL --client-id ID"`;
}

/** The daemon's config file, or (no file yet) where the CLI would write one. */
export async function configPathOf(daemonConfigPath: string | null): Promise<string> {
  if (daemonConfigPath !== null) return daemonConfigPath;
  const { defaultConfigPath } = await import('../config.js'); // only on this path: start-up time
  return defaultConfigPath();
}

/**
 * PROFILE_NOT_FOUND from a daemon that has no profile at all becomes the first-run message (same code,
 * so exit codes and scripts are unchanged). Any other error is returned as it is.
 */
export async function explainNoProfiles(error: unknown, client: BrokerClient): Promise<unknown> {
  if (!(error instanceof BrokerError) || error.code !== 'PROFILE_NOT_FOUND') return error;
  try {
    const status = await client.status({ timeoutMs: 5_000 });
    if (status.profiles.length > 0) return error;
    return new BrokerError('PROFILE_NOT_FOUND', noProfilesMessage(await configPathOf(status.configPath)), { cause: error });
  } catch {
    return error;
  }
}
