/**
 * What follows a permanent refresh failure (the provider guide's two policies), once the session has
 * dropped its tokens and told the apps:
 *
 * - `onRefreshFailure: "relogin"` — open the authorize URL again; a live provider session signs the user
 *   straight back in.
 * - `onRefreshFailure: "logout"` — the full logout flow first: revoke what may still be alive (RFC 7009)
 *   and show the provider's logout page (OIDC RP-Initiated Logout §2 / Wristband), so the next sign-in
 *   asks for credentials (it also carries `prompt=login`).
 *
 * `reloginBrowser: "immediately"` opens the browser at the failure; `"on-demand"` when an app next needs
 * the session, at most once per failure.
 */
import type { ProfileConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { StoredTokens } from '../store/types.js';

export interface FailurePolicyDeps {
  readonly profile: ProfileConfig;
  readonly log: Logger;
  /** Runs the logout flow for `ended` (never throws; failures are logged). */
  readonly endProviderSession: (ended: StoredTokens, options: { readonly showLogoutPage: boolean; readonly revoke: boolean }) => Promise<void>;
  /** Starts (or joins) a browser sign-in and opens the browser. */
  readonly startLogin: () => Promise<unknown>;
}

export class FailurePolicy {
  /** The browser has been sent for the current failure. */
  private opened = false;
  /** Policy "logout" on demand: the ended session, whose logout page is still to be shown. */
  private ended: StoredTokens | undefined;

  /** Work `sessionEnded` left for `followUp`. */
  private next: { readonly logoutOf?: StoredTokens; readonly openNow: boolean } | undefined;

  constructor(private readonly deps: FailurePolicyDeps) {}

  /**
   * The session ended by a permanent failure; `ended` are the tokens it had. Synchronous, and called
   * before apps hear of the failure: an app that asks the moment `loginRequired` arrives must already
   * find the policy's state (what the browser is to show).
   */
  sessionEnded(ended: StoredTokens | undefined): void {
    const { profile } = this.deps;
    const openNow = profile.reloginBrowser === 'immediately';
    const logoutOf = profile.onRefreshFailure === 'logout' ? ended : undefined;
    this.opened = openNow;
    this.ended = openNow ? undefined : logoutOf;
    this.next = { ...(logoutOf ? { logoutOf } : {}), openNow };
  }

  /** What follows at once: the logout flow's revocation (and its page, "immediately"), the sign-in ("immediately"). */
  async followUp(): Promise<void> {
    const next = this.next;
    this.next = undefined;
    if (!next) return;
    if (next.logoutOf) await this.deps.endProviderSession(next.logoutOf, { showLogoutPage: next.openNow, revoke: true });
    if (next.openNow) this.run(this.deps.startLogin());
  }

  /**
   * An app needs the ended session back. True when this opened the browser (the first time after a
   * failure, policy "on-demand").
   */
  appAsked(): boolean {
    if (this.opened || this.deps.profile.reloginBrowser !== 'on-demand') return false;
    this.opened = true;
    const ended = this.ended;
    this.ended = undefined;
    this.run(
      (async () => {
        if (ended) await this.deps.endProviderSession(ended, { showLogoutPage: true, revoke: false });
        await this.deps.startLogin();
      })(),
    );
    return true;
  }

  /** A new session (login) or a deliberate logout: nothing is pending any more. */
  reset(): void {
    this.opened = false;
    this.ended = undefined;
    this.next = undefined;
  }

  private run(work: Promise<unknown>): void {
    work.catch((error: unknown) =>
      this.deps.log.warn({ profile: this.deps.profile.name, err: { message: (error as Error).message } }, 'could not start the re-login'),
    );
  }
}
