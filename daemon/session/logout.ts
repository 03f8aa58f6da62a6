/**
 * Logout in the provider guide's order: delete the tokens from the keychain, revoke the refresh token
 * (RFC 7009), then send the browser to the provider's logout endpoint, whose redirect comes back through
 * the same scheme or loopback handler.
 */
import type { OpenBrowser } from '../browser.js';
import type { ProfileConfig } from '../config.js';
import type { Logger } from '../log.js';
import { buildLogoutUrl, revokeToken, type HttpClient, type ProviderMetadata } from '../oauth/index.js';
import type { StoredTokens, TokenStore } from '../store/keychain.js';

export interface LogoutDeps {
  readonly profile: ProfileConfig;
  readonly store: TokenStore;
  readonly http: HttpClient;
  readonly log: Logger;
  readonly openBrowser: OpenBrowser;
  readonly metadata: () => Promise<ProviderMetadata>;
  readonly newState: () => string;
  readonly expectReturn: (state: string) => void;
}

export interface LogoutOutcome {
  readonly keychainCleared: boolean;
  readonly revoked: boolean;
  readonly revokeError?: string;
  readonly logoutUrl?: string;
}

export async function logout(
  options: LogoutDeps & { readonly tokens: StoredTokens | undefined; readonly showLogoutPage: boolean; readonly revoke: boolean },
): Promise<LogoutOutcome> {
  const { profile, store, http, log, tokens } = options;
  // 1. The keychain first: if this fails nothing else happens, and the session is untouched.
  const keychainCleared = await store.delete(profile.name);

  let metadata: ProviderMetadata | undefined;
  let revokeError: string | undefined;
  try {
    metadata = await options.metadata();
  } catch (error) {
    revokeError = `provider unreachable: ${(error as Error).message}`;
  }

  // 2. RFC 7009 §2.1: revoke the refresh token (which also ends its access tokens at most providers).
  let revoked = false;
  const token = tokens?.refreshToken ?? tokens?.accessToken;
  if (options.revoke && metadata && token) {
    const result = await revokeToken({
      http,
      metadata,
      clientId: profile.clientId,
      token,
      tokenTypeHint: tokens?.refreshToken ? 'refresh_token' : 'access_token',
    });
    revoked = result.revoked;
    if (!result.revoked) {
      revokeError = result.message;
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
