/**
 * `tokenbroker profile remove NAME`: signs the profile out first — through the daemon when it runs (its
 * keychain entry deleted, the refresh token revoked, apps told), else by deleting the keychain entry
 * directly — and then removes it from the config file (atomically; daemon/config-write.ts).
 */
import { BrokerError } from '../../proto/index.js';
import { editConfig, readConfigDocument, removeProfile } from '../config-write.js';
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

async function signOut(name: string, socket: string | undefined, context: CommandContext): Promise<SignOutOutcome> {
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
  return { via: 'keychain', keychainCleared: await store.delete(name) };
}

export async function removeProfileCommand(
  name: string,
  options: { readonly config: string | undefined; readonly socket: string | undefined },
  context: CommandContext,
): Promise<RemoveResult> {
  const { file } = configLocation(options.config);
  // Checks that it exists, before anything is signed out.
  removeProfile(readConfigDocument(file), name);
  const outcome = await signOut(name, options.socket, context);
  const { wasDefault } = await editConfig(file, (document) => removeProfile(document, name));
  return { profile: name, configPath: file, wasDefault, signOut: outcome };
}
