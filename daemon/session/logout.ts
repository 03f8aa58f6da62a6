/**
 * Logout in the provider guide's order: delete the tokens from the keychain, revoke the refresh token
 * (RFC 7009), then send the browser to the provider's logout endpoint, whose redirect comes back through
 * the same scheme or loopback handler.
 *
 * Crash safety: before the entry is deleted, the token to revoke is recorded in the keychain as a
 * pending revocation (pending-revocations.ts). A kill between the delete and the revocation then leaves
 * that record, which the next daemon start revokes; a kill between the record and the delete leaves both,
 * and the next start finishes the logout (Session.restore). The record goes once the provider answered.
 */
import type { OpenBrowser } from '../browser.js';
import type { ProfileConfig } from '../config.js';
import type { Logger } from '../log.js';
import { buildLogoutUrl, clientAuthentication, revokeToken, type HttpClient, type ProviderMetadata } from '../oauth/index.js';
import type { StoredTokens, TokenStore } from '../store/types.js';
import type { PendingRevocation } from '../store/revocation-entry.js';
import type { PendingRevocations } from './pending-revocations.js';

export interface LogoutDeps {
  readonly profile: ProfileConfig;
  readonly store: TokenStore;
  readonly http: HttpClient;
  readonly log: Logger;
  readonly openBrowser: OpenBrowser;
  readonly metadata: () => Promise<ProviderMetadata>;
  readonly newState: () => string;
  readonly expectReturn: (state: string) => void;
  /** Where revocations are recorded before the entry is deleted. @default none (revoked in place only) */
  readonly revocations?: PendingRevocations;
}

export interface LogoutOutcome {
  readonly keychainCleared: boolean;
  readonly revoked: boolean;
  readonly revokeError?: string;
  readonly logoutUrl?: string;
}

function clientAuthOption(profile: ProfileConfig): { clientAuth?: NonNullable<ReturnType<typeof clientAuthentication>> } {
  const clientAuth = clientAuthentication(profile);
  return clientAuth === undefined ? {} : { clientAuth };
}

export async function logout(
  options: LogoutDeps & { readonly tokens: StoredTokens | undefined; readonly showLogoutPage: boolean; readonly revoke: boolean },
): Promise<LogoutOutcome> {
  const { profile, store, http, log, tokens } = options;
  const token = tokens?.refreshToken ?? tokens?.accessToken;
  const tokenTypeHint = tokens?.refreshToken ? 'refresh_token' : 'access_token';

  let metadata: ProviderMetadata | undefined;
  let revokeError: string | undefined;
  try {
    metadata = await options.metadata();
  } catch (error) {
    revokeError = `provider unreachable: ${(error as Error).message}`;
  }

  // 0. Record what must still be revoked, before anything is deleted (crash safety, see above). If the
  //    keychain refuses, nothing else happens and the session is untouched.
  let record: PendingRevocation | undefined;
  if (options.revoke && token && options.revocations && !(metadata && metadata.revocationEndpoint === undefined)) {
    record = await options.revocations.add({
      profile: profile.name,
      issuer: profile.issuer,
      clientId: profile.clientId,
      ...(metadata?.revocationEndpoint === undefined ? {} : { revocationEndpoint: metadata.revocationEndpoint }),
      token,
      tokenTypeHint,
    });
  }

  // 1. The keychain: if this fails nothing else happens, and the session is untouched.
  let keychainCleared: boolean;
  try {
    keychainCleared = await store.delete(profile.name);
  } catch (error) {
    if (record) await options.revocations!.remove(record.id).catch(() => undefined); // else the next start finishes this logout
    throw error;
  }

  // 2. RFC 7009 §2.1: revoke the refresh token (which also ends its access tokens at most providers).
  let revoked = false;
  if (options.revoke && token && (record || metadata)) {
    const result = record
      ? await options.revocations!.revoke(record, http)
      : await revokeToken({ http, metadata: metadata!, clientId: profile.clientId, ...clientAuthOption(profile), token, tokenTypeHint });
    revoked = result.revoked;
    if (!result.revoked) {
      revokeError = result.reason === 'transient' && record ? `${result.message} (kept in the keychain; retried with backoff)` : result.message;
      log.warn({ profile: profile.name, reason: result.reason, status: result.status }, 'revocation failed (logged out locally anyway)');
    }
  } else if (!token) revokeError = 'no tokens to revoke';

  // 3. The provider's logout page ends its browser session (OIDC RP-Initiated Logout §2 / Wristband).
  let logoutUrl: string | undefined;
  if (metadata) {
    const state = options.newState();
    // No id_token_hint: the URL goes to the browser's command line, which other local users can read
    // (ps); client_id identifies the client instead (RP-Initiated Logout §2 allows either).
    logoutUrl = buildLogoutUrl(metadata, {
      clientId: profile.clientId,
      ...(profile.postLogoutRedirectUri ? { postLogoutRedirectUri: profile.postLogoutRedirectUri } : {}),
      state,
    });
    if (logoutUrl && profile.postLogoutRedirectUri) options.expectReturn(state);
    if (logoutUrl && options.showLogoutPage) await options.openBrowser(logoutUrl);
  }
  log.info({ profile: profile.name, keychainCleared, revoked }, 'signed out');
  return { keychainCleared, revoked, ...(revokeError === undefined ? {} : { revokeError }), ...(logoutUrl === undefined ? {} : { logoutUrl }) };
}
