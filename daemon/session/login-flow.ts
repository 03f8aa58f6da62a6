/**
 * One pending browser login of a profile (RFC 8252 §7): the authorization request, its loopback
 * listener, its timeout, and the apps waiting for it. Many apps, one browser tab.
 *
 * The browser is never given the authorization URL itself (its state, nonce and PKCE challenge would
 * sit on the browser's and xdg-open's command lines, readable by every local user): it gets a one-time
 * launcher URL on the loopback listener, which redirects once (see loopback-listener.ts). Loopback
 * profiles serve the launcher on their callback listener; custom-scheme profiles get a listener that
 * only launches, for the life of the login.
 */
import { BrokerError } from '../../proto/index.js';
import type { ProfileConfig } from '../config.js';
import { startLoopbackListener, type Caller, type LoopbackListener } from '../loopback-listener.js';
import { createAuthorizationRequest, loopbackRedirect, type AuthorizationRequest, type ProviderMetadata } from '../oauth/index.js';
import { waitForSignIn } from './wait.js';

export interface LoginOutcome {
  readonly subject?: string;
  readonly email?: string;
  readonly expiresAt: number;
  /** Set when this sign-in named another subject than the profile's previous session. */
  readonly previousSubject?: string;
}

export interface PendingLoginOptions {
  readonly profile: ProfileConfig;
  readonly metadata: ProviderMetadata;
  /** Extra authorization parameters for this login only (e.g. prompt=login after a forced logout). */
  readonly extraParams?: Readonly<Record<string, string>>;
  /** Where a loopback redirect is delivered. */
  readonly onLoopbackCallback: (url: string, caller: Caller) => Promise<{ ok: boolean; message: string }>;
  readonly onTimeout: (login: PendingLogin) => void;
  /** The launcher URL was opened a second time: the login must be aborted. */
  readonly onLaunchReplay: (login: PendingLogin) => void;
  /** Starts the loopback listener (tests pass their own). @default startLoopbackListener */
  readonly startListener?: typeof startLoopbackListener;
  readonly now: () => number;
}

export class PendingLogin {
  readonly startedAt: number;
  readonly timesOutAt: number;
  readonly outcome: Promise<LoginOutcome>;
  private resolveOutcome!: (outcome: LoginOutcome) => void;
  private rejectOutcome!: (error: BrokerError) => void;
  private readonly timer: NodeJS.Timeout;
  private settled = false;

  private constructor(
    readonly request: AuthorizationRequest,
    readonly redirectUri: string,
    readonly metadata: ProviderMetadata,
    private readonly listener: LoopbackListener,
    /** The listener only launches (a custom-scheme redirect): it closes with the login. */
    private readonly launchOnly: boolean,
    options: PendingLoginOptions,
  ) {
    this.startedAt = options.now();
    this.timesOutAt = this.startedAt + options.profile.loginTimeoutSeconds * 1000;
    this.outcome = new Promise<LoginOutcome>((resolve, reject) => {
      this.resolveOutcome = resolve;
      this.rejectOutcome = reject;
    });
    this.outcome.catch(() => {}); // waiters attach their own handlers; an unobserved failure is fine
    this.timer = setTimeout(() => options.onTimeout(this), options.profile.loginTimeoutSeconds * 1000);
  }

  static async start(options: PendingLoginOptions): Promise<PendingLogin> {
    const { profile, metadata } = options;
    let login: PendingLogin | undefined;
    const loopback = loopbackRedirect(profile.redirectUri);
    const timeoutMs = profile.loginTimeoutSeconds * 1000;
    let listener: LoopbackListener;
    try {
      // RFC 8252 §7.3: a listener on 127.0.0.1 (an ephemeral port unless the config fixes one), only
      // for this login; it also serves the one-time launcher. Custom scheme: a launcher only.
      listener = await (options.startListener ?? startLoopbackListener)({
        timeoutMs,
        ...(loopback === undefined ? {} : { path: loopback.path, port: loopback.port, onCallback: options.onLoopbackCallback }),
        launcher: {
          target: () => login?.url,
          onReplay: () => {
            if (login) options.onLaunchReplay(login);
          },
        },
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE' && loopback?.port) {
        throw new BrokerError(
          'LOGIN_FAILED',
          `${profile.name}: port ${loopback.port} on 127.0.0.1 (from redirectUri ${profile.redirectUri}) is in use by another program, so the sign-in cannot receive its redirect there; close that program or configure another port (or "loopback" for any free port)`,
          { field: `profiles.${profile.name}.redirectUri` },
        );
      }
      throw new BrokerError('LOGIN_FAILED', `${profile.name}: could not listen on 127.0.0.1 for the sign-in (${(error as Error).message})`);
    }
    // A fixed port is sent exactly as configured (providers compare it as registered).
    const redirectUri = loopback === undefined ? profile.redirectUri : loopback.port ? profile.redirectUri : listener.redirectUri;
    try {
      const request = createAuthorizationRequest({
        metadata,
        clientId: profile.clientId,
        redirectUri,
        scopes: profile.scopes,
        extraParams: { ...profile.authorizationParams, ...options.extraParams },
      });
      login = new PendingLogin(request, redirectUri, metadata, listener, loopback === undefined, options);
      return login;
    } catch (error) {
      listener.close();
      throw error;
    }
  }

  /** What the browser is opened with, and what is shown to the user: the one-time launcher. */
  get launchUrl(): string {
    return this.listener.launchUrl!;
  }

  get state(): string {
    return this.request.state;
  }

  get url(): string {
    return this.request.url;
  }

  /** The redirect must come back to exactly where this request said (RFC 9700 §4.1: no other profile's URI). */
  matchesRedirect(url: string): boolean {
    try {
      const got = new URL(url);
      const want = new URL(this.redirectUri);
      return got.protocol === want.protocol && got.host === want.host && got.pathname === want.pathname;
    } catch {
      return false;
    }
  }

  succeed(outcome: LoginOutcome): void {
    if (this.finish()) this.resolveOutcome(outcome);
    // A loopback listener closes itself once it has answered the browser; a launcher-only one now.
    if (this.launchOnly) this.listener.close();
  }

  /** Fails the login from a callback: the loopback listener still answers the browser, then closes. */
  fail(error: BrokerError): void {
    if (this.finish()) this.rejectOutcome(error);
  }

  /** Fails the login from outside a callback (timeout, cancel, logout): closes the listener now. */
  abandon(error: BrokerError): void {
    this.fail(error);
    this.listener.close();
  }

  /**
   * Another sign-in (a device sign-in asked for meanwhile) takes this one's place: the listener closes,
   * and the apps waiting here get that sign-in's outcome.
   */
  handOver(next: Promise<LoginOutcome>): void {
    if (!this.finish()) return;
    this.listener.close();
    next.then(this.resolveOutcome, this.rejectOutcome);
  }

  /** Waits for the outcome, or until `signal` fires (the waiter leaves; the login goes on for others). */
  wait(signal: AbortSignal): Promise<LoginOutcome> {
    return waitForSignIn(this.outcome, signal);
  }

  private finish(): boolean {
    if (this.settled) return false;
    this.settled = true;
    clearTimeout(this.timer);
    return true;
  }
}
