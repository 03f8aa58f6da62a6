/**
 * A session's one pending browser login (RFC 8252 §7): started once and joined by every app that asks
 * meanwhile — many apps, one browser tab — and ended by its redirect, a timeout, a cancel or a logout.
 * A device sign-in (RFC 8628, device-login.ts) takes the same slot: the profile's `flow: "device"`, or
 * `login` with `device: true` (which takes over a browser sign-in under way).
 */
import { BrokerError } from '../../proto/index.js';
import type { OpenBrowser } from '../browser.js';
import type { ProfileConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { Caller, startLoopbackListener } from '../loopback-listener.js';
import { deviceAuthorizationEndpoint, loopbackRedirect, type HttpClient, type ProviderMetadata } from '../oauth/index.js';
import { DeviceLogin, type DeviceTokens } from './device-login.js';
import { PendingLogin } from './login-flow.js';

/** A sign-in under way: through the browser, or with a code on another device. */
export type SignIn = PendingLogin | DeviceLogin;

export interface LoginStart {
  readonly login: SignIn;
  readonly joined: boolean;
}

export interface LoginStartOptions {
  readonly openBrowser: boolean;
  readonly extraParams?: Readonly<Record<string, string>>;
  /** A device sign-in (RFC 8628) whatever the profile's `flow`. @default the profile's flow */
  readonly device?: boolean;
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
  readonly onStarted: (login: SignIn) => void;
  /** A login ended without a session (timeout, cancel, failure). */
  readonly onEnded: (error: BrokerError) => void;
  /** Starts the loopback listener (tests pass their own). @default startLoopbackListener */
  readonly startListener?: typeof startLoopbackListener;
  /** For the device sign-in's requests to the provider. */
  readonly http: HttpClient;
  /** A device sign-in was approved: the session validates, stores and installs the tokens. */
  readonly onDeviceTokens: (login: DeviceLogin, tokens: DeviceTokens) => Promise<void>;
}

export class LoginSlot {
  private current: SignIn | undefined;
  private starting: Promise<SignIn> | undefined;

  constructor(private readonly deps: LoginSlotDeps) {}

  get pending(): SignIn | undefined {
    return this.current;
  }

  /**
   * Starts a sign-in, or joins the one under way (or being set up). A device sign-in asked for while a
   * browser one is under way takes its place (over SSH the browser one cannot finish).
   */
  async start(options: LoginStartOptions): Promise<LoginStart> {
    const device = options.device === true || this.deps.profile.flow === 'device';
    const pending = this.current ?? (this.starting ? await this.starting : undefined);
    if (pending && !(device && pending instanceof PendingLogin)) return { login: pending, joined: true };
    if (this.starting) return { login: await this.starting, joined: true }; // another caller is already taking over
    const starting = device ? this.beginDevice(pending) : this.begin(options);
    this.starting = starting;
    try {
      return { login: await starting, joined: false };
    } finally {
      this.starting = undefined;
    }
  }

  /** RFC 8628: asks the provider for a user code; the browser sign-in `replacing` (if any) hands over to it. */
  private async beginDevice(replacing: PendingLogin | undefined): Promise<DeviceLogin> {
    const { profile } = this.deps;
    const metadata = await this.deps.metadata();
    deviceAuthorizationEndpoint(metadata, profile.name);
    const login = await DeviceLogin.start({
      profile,
      metadata,
      http: this.deps.http,
      log: this.deps.log,
      now: this.deps.now,
      onTokens: this.deps.onDeviceTokens,
      onFailed: (failed, error) => this.end(failed, error),
    });
    if (replacing && this.current === replacing) {
      this.current = undefined;
      replacing.handOver(login.outcome);
      this.deps.log.info({ profile: profile.name }, 'the browser sign-in under way was replaced by a device sign-in');
    }
    this.current = login;
    this.deps.onStarted(login);
    this.deps.log.info({ profile: profile.name, flow: 'device', expiresAt: new Date(login.timesOutAt).toISOString() }, 'login started');
    return login;
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

  /** The redirect (or the device tokens) for `login` arrived: it is taken (state is single-use, so a replay finds nothing). */
  take(login: SignIn): void {
    if (this.current === login) this.current = undefined;
  }

  /** Ends `login` without a session. */
  end(login: SignIn, error: BrokerError): void {
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
