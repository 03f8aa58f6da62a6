/**
 * A session's one pending browser login (RFC 8252 §7): started once and joined by every app that asks
 * meanwhile — many apps, one browser tab — and ended by its redirect, a timeout, a cancel or a logout.
 */
import { BrokerError } from '../../proto/index.js';
import type { OpenBrowser } from '../browser.js';
import type { ProfileConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { Caller, startLoopbackListener } from '../loopback-listener.js';
import { loopbackRedirect, type ProviderMetadata } from '../oauth/index.js';
import { PendingLogin } from './login-flow.js';

export interface LoginStart {
  readonly login: PendingLogin;
  readonly joined: boolean;
}

export interface LoginStartOptions {
  readonly openBrowser: boolean;
  readonly extraParams?: Readonly<Record<string, string>>;
}

export interface LoginSlotDeps {
  readonly profile: ProfileConfig;
  readonly log: Logger;
  readonly metadata: () => Promise<ProviderMetadata>;
  readonly openBrowser: OpenBrowser;
  readonly onLoopbackCallback: (url: string, caller: Caller) => Promise<{ ok: boolean; message: string }>;
  readonly now: () => number;
  /** Parameters the session adds to a new login (e.g. `prompt=login` after a forced logout). */
  readonly sessionParams: () => Readonly<Record<string, string>>;
  /** A login was set up (before the browser opens). */
  readonly onStarted: (login: PendingLogin) => void;
  /** A login ended without a session (timeout, cancel, failure). */
  readonly onEnded: (error: BrokerError) => void;
  /** Starts the loopback listener (tests pass their own). @default startLoopbackListener */
  readonly startListener?: typeof startLoopbackListener;
}

export class LoginSlot {
  private current: PendingLogin | undefined;
  private starting: Promise<PendingLogin> | undefined;

  constructor(private readonly deps: LoginSlotDeps) {}

  get pending(): PendingLogin | undefined {
    return this.current;
  }

  /** Starts a browser login, or joins the one under way (or being set up). */
  async start(options: LoginStartOptions): Promise<LoginStart> {
    if (this.current) return { login: this.current, joined: true };
    if (this.starting) return { login: await this.starting, joined: true };
    const starting = this.begin(options);
    this.starting = starting;
    try {
      return { login: await starting, joined: false };
    } finally {
      this.starting = undefined;
    }
  }

  private async begin(options: LoginStartOptions): Promise<PendingLogin> {
    const { profile } = this.deps;
    const metadata = await this.deps.metadata();
    const login = await PendingLogin.start({
      profile,
      metadata,
      extraParams: { ...this.deps.sessionParams(), ...options.extraParams },
      onLoopbackCallback: this.deps.onLoopbackCallback,
      ...(this.deps.startListener === undefined ? {} : { startListener: this.deps.startListener }),
      onTimeout: (timedOut) =>
        this.end(timedOut, new BrokerError('LOGIN_TIMEOUT', `${profile.name}: the sign-in was not completed within ${profile.loginTimeoutSeconds} s`)),
      onLaunchReplay: (replayed) => {
        if (this.current !== replayed) {
          // Its redirect already arrived (the exchange is under way or done): nothing left to stop.
          this.deps.log.warn({ profile: profile.name }, 'the sign-in link was opened again after its redirect arrived');
          return;
        }
        this.deps.log.warn({ profile: profile.name }, 'the sign-in link was opened a second time: sign-in aborted');
        this.end(
          replayed,
          new BrokerError(
            'LOGIN_FAILED',
            `${profile.name}: the sign-in link was opened twice (someone else may have opened it), so this sign-in was stopped; sign in again`,
          ),
        );
      },
      now: this.deps.now,
    });
    this.current = login;
    this.deps.onStarted(login);
    this.deps.log.info({ profile: profile.name, redirect: loopbackRedirect(profile.redirectUri) ? 'loopback' : 'custom-scheme' }, 'login started');
    // Never the authorization URL itself: it would sit on the browser's command line (see login-flow.ts).
    if (options.openBrowser) await this.deps.openBrowser(login.launchUrl);
    return login;
  }

  /** The redirect for `login` arrived: it is taken (state is single-use, so a replay finds nothing). */
  take(login: PendingLogin): void {
    if (this.current === login) this.current = undefined;
  }

  /** Ends `login` without a session. */
  end(login: PendingLogin, error: BrokerError): void {
    if (this.current === login) this.current = undefined;
    login.abandon(error);
    this.deps.log.info({ profile: this.deps.profile.name, code: error.code }, 'login ended without a session');
    this.deps.onEnded(error);
  }

  /** Ends the pending login, if any; true when there was one. */
  cancel(error: BrokerError): boolean {
    const login = this.current;
    if (!login) return false;
    this.end(login, error);
    return true;
  }

  /** Daemon shutdown: waiters are told, nobody is notified. */
  dispose(): void {
    this.current?.abandon(new BrokerError('SHUTTING_DOWN', 'the daemon is stopping'));
  }
}
