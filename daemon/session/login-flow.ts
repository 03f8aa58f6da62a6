/**
 * One pending browser login of a profile (RFC 8252 §7): the authorization request, the loopback
 * listener if any, its timeout, and the apps waiting for it. Many apps, one browser tab.
 */
import { BrokerError } from '../../proto/index.js';
import type { ProfileConfig } from '../config.js';
import { startLoopbackListener, type LoopbackListener } from '../loopback-listener.js';
import { createAuthorizationRequest, type AuthorizationRequest, type ProviderMetadata } from '../oauth/index.js';

export interface LoginOutcome {
  readonly subject?: string;
  readonly email?: string;
  readonly expiresAt: number;
}

export interface PendingLoginOptions {
  readonly profile: ProfileConfig;
  readonly metadata: ProviderMetadata;
  /** Extra authorization parameters for this login only (e.g. prompt=login after a forced logout). */
  readonly extraParams?: Readonly<Record<string, string>>;
  /** Where a loopback redirect is delivered. */
  readonly onLoopbackCallback: (url: string) => Promise<{ ok: boolean; message: string }>;
  readonly onTimeout: (login: PendingLogin) => void;
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
    private readonly listener: LoopbackListener | undefined,
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
    let listener: LoopbackListener | undefined;
    let redirectUri = profile.redirectUri;
    if (redirectUri === 'loopback') {
      // RFC 8252 §7.3: a one-shot listener on 127.0.0.1 and an ephemeral port, only for this login.
      listener = await startLoopbackListener({
        timeoutMs: profile.loginTimeoutSeconds * 1000,
        onCallback: options.onLoopbackCallback,
      });
      redirectUri = listener.redirectUri;
    }
    const request = createAuthorizationRequest({
      metadata,
      clientId: profile.clientId,
      redirectUri,
      scopes: profile.scopes,
      extraParams: { ...profile.authorizationParams, ...options.extraParams },
    });
    return new PendingLogin(request, redirectUri, metadata, listener, options);
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
  }

  /** Fails the login from a callback: the loopback listener still answers the browser, then closes. */
  fail(error: BrokerError): void {
    if (this.finish()) this.rejectOutcome(error);
  }

  /** Fails the login from outside a callback (timeout, cancel, logout): closes the listener now. */
  abandon(error: BrokerError): void {
    this.fail(error);
    void this.listener?.close();
  }

  /** Waits for the outcome, or until `signal` fires (the waiter leaves; the login goes on for others). */
  wait(signal: AbortSignal): Promise<LoginOutcome> {
    if (signal.aborted) return Promise.reject(new BrokerError('LOGIN_CANCELLED', 'the waiting client went away'));
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(new BrokerError('LOGIN_CANCELLED', 'the waiting client went away'));
      signal.addEventListener('abort', onAbort, { once: true });
      this.outcome.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  private finish(): boolean {
    if (this.settled) return false;
    this.settled = true;
    clearTimeout(this.timer);
    return true;
  }
}
