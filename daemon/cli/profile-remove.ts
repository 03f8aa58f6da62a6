/**
 * `tokenbroker profile remove NAME`: signs the profile out first — through the daemon when it runs (its
 * keychain entry deleted, the refresh token revoked, apps told), else itself: the keychain entry
 * deleted and its refresh token revoked at the provider (RFC 7009) — and then removes it from the config file (atomically; daemon/config-write.ts).
 */
import { BrokerError } from '../../proto/index.js';
import { editConfig, readConfigDocument, removeProfile } from '../config-write.js';
import { loadConfig, type ProfileConfig } from '../config.js';
import type { CommandContext } from './context.js';
import { configLocation } from './profile-common.js';

export interface SignOutOutcome {
  /** Who signed the profile out. */
  readonly via: 'daemon' | 'keychain';
  readonly keychainCleared: boolean;
  /** Through the daemon: whether the refresh token was revoked at the provider. */
  readonly revoked?: boolean;
  readonly revokeError?: string;
}

export interface RemoveResult {
  readonly profile: string;
  readonly configPath: string;
  readonly wasDefault: boolean;
  readonly signOut: SignOutOutcome;
}

async function signOut(profile: ProfileConfig, socket: string | undefined, context: CommandContext): Promise<SignOutOutcome> {
  const name = profile.name;
  const { connect } = await import('../../client/index.js');
  try {
    const client = await connect({ ...context.connectOptions(socket), clientName: 'tokenbroker-cli', reconnect: false });
    try {
      const result = await client.logout({ profile: name, openBrowser: false, timeoutMs: 60_000 });
      return {
        via: 'daemon',
        keychainCleared: result.keychainCleared,
        revoked: result.revoked,
        ...(result.revokeError === undefined ? {} : { revokeError: result.revokeError }),
      };
    } finally {
      await client.close();
    }
  } catch (error) {
    // Not running, or running with a config that does not have this profile (yet): the keychain directly.
    if (!(error instanceof BrokerError) || !['DAEMON_NOT_RUNNING', 'PROFILE_NOT_FOUND'].includes(error.code)) throw error;
  }
  const { KeychainStore, KEYCHAIN_SERVICE } = await import('../store/keychain.js');
  const store = new KeychainStore({ service: process.env['TOKENBROKER_KEYCHAIN_SERVICE'] || KEYCHAIN_SERVICE });
  const stored = await store.load(name);
  const keychainCleared = await store.delete(name);
  if (stored?.refreshToken === undefined) return { via: 'keychain', keychainCleared, revoked: false, revokeError: 'no refresh token was stored' };
  // Issuer binding (docs/security.md): tokens are revoked only where they came from.
  if (stored.issuer !== profile.issuer || stored.clientId !== profile.clientId) {
    return { via: 'keychain', keychainCleared, revoked: false, revokeError: 'the stored tokens are not bound to this issuer and client; not sent anywhere' };
  }
  const { createHttpClient, resolveProviderMetadata, revokeToken } = await import('../oauth/index.js');
  try {
    const http = createHttpClient({ timeoutMs: profile.httpTimeoutSeconds * 1000, retry: { limit: 1 } });
    const metadata = await resolveProviderMetadata(profile, http);
    // RFC 7009 §2.1: the refresh token, revoked with the public client's id.
    const result = await revokeToken({ http, metadata, clientId: profile.clientId, token: stored.refreshToken, tokenTypeHint: 'refresh_token' });
    return result.revoked
      ? { via: 'keychain', keychainCleared, revoked: true }
      : { via: 'keychain', keychainCleared, revoked: false, revokeError: result.message };
  } catch (error) {
    return { via: 'keychain', keychainCleared, revoked: false, revokeError: error instanceof Error ? error.message : String(error) };
  }
}

export async function removeProfileCommand(
  name: string,
  options: { readonly config: string | undefined; readonly socket: string | undefined },
  context: CommandContext,
): Promise<RemoveResult> {
  const { file } = configLocation(options.config);
  // Checks that it exists, before anything is signed out.
  removeProfile(readConfigDocument(file), name);
  const profile = loadConfig(file).profiles.get(name)!;
  const outcome = await signOut(profile, options.socket, context);
  const { wasDefault } = await editConfig(file, (document) => removeProfile(document, name));
  return { profile: name, configPath: file, wasDefault, signOut: outcome };
}
