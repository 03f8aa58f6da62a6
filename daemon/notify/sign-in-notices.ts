/**
 * Tells the user, outside any app, that a profile needs a new sign-in: the daemon runs in the background,
 * and the app that would handle `loginRequired` may not be open. Driven by the broker's own events:
 *
 * - `loginRequired` (a permanent refresh failure: a revoked or expired grant, under either policy) shows
 *   one notification, unless the profile says `notify: false`;
 * - at most one per episode: the next one only after the session was healthy again (state `active`) or
 *   signed out on purpose (`loggedOut`).
 */
import type { BrokerEvent } from '../../proto/index.js';
import type { ProfileConfig } from '../config.js';
import type { Notice, Notify } from './desktop.js';

export interface SignInNoticesOptions {
  readonly notify: Notify;
  /** The profile's settings now (undefined when it is no longer configured). */
  readonly profile: (name: string) => Pick<ProfileConfig, 'name' | 'notify' | 'reloginBrowser'> | undefined;
}

export class SignInNotices {
  /** Profiles notified in their current episode. */
  private readonly notified = new Set<string>();

  constructor(private readonly options: SignInNoticesOptions) {}

  /** Sees every event the broker publishes. */
  observe(event: BrokerEvent): void {
    switch (event.event) {
      case 'loginRequired': {
        const { profile: name, reason } = event.data;
        const profile = this.options.profile(name);
        if (profile === undefined || !profile.notify || this.notified.has(name)) return;
        this.notified.add(name);
        this.options.notify(signInNotice(profile, reason));
        return;
      }
      case 'stateChanged':
        if (event.data.state === 'active') this.notified.delete(event.data.profile);
        return;
      case 'loggedOut':
      case 'profileRemoved':
        this.notified.delete(event.data.profile);
        return;
      default:
        return;
    }
  }
}

/** Why a session ended, in words (the reason codes come from session/token-requests.ts). */
function describe(reason: string): string {
  switch (reason) {
    case 'invalid_grant':
      return 'The provider ended the session (the sign-in expired or was revoked).';
    case 'no_refresh_token':
      return 'The access token expired and the provider gave no way to renew it.';
    default:
      return `The session ended (${reason}).`;
  }
}

export function signInNotice(profile: Pick<ProfileConfig, 'name' | 'reloginBrowser'>, reason: string): Notice {
  const action =
    profile.reloginBrowser === 'immediately'
      ? `Finish signing in in the browser window that opened, or run: tokenbroker login --profile ${profile.name}`
      : `Run: tokenbroker login --profile ${profile.name}`;
  return { summary: `Sign in to ${profile.name} again`, body: `${describe(reason)} ${action}` };
}
