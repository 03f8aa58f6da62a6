/**
 * The broker: one Session per configured profile, the protocol's handlers, the routing of browser
 * redirects (custom scheme or loopback) to the login or logout that is waiting for them, and the
 * watch for wall-clock jumps.
 */
import { BrokerError, type BrokerEvent, type CallbackResult, type ProfileStatus } from '../proto/index.js';
import type { OpenBrowser } from './browser.js';
import type { BrokerConfig, ProfileConfig } from './config.js';
import { diffConfigs, type ConfigDiff } from './config-reload.js';
import type { Handlers } from './ipc/ipc-server.js';
import type { Logger } from './log.js';
import type { Caller } from './loopback-listener.js';
import { clientAuthentication, createHttpClient, extractState, resolveProviderMetadata } from './oauth/index.js';
import { startClockWatch, type ClockWatch } from './session/clock-watch.js';
import { DeviceLogin } from './session/device-login.js';
import { PendingRevocations } from './session/pending-revocations.js';
import { Session } from './session/session.js';
import type { TokenStore } from './store/types.js';

export interface BrokerOptions {
  readonly config: BrokerConfig;
  readonly store: TokenStore;
  readonly log: Logger;
  readonly publish: (event: BrokerEvent) => void;
  readonly openBrowser: OpenBrowser;
  readonly now?: () => number;
}

/** How often the clock watch looks, and how far off it may be before it counts as a jump. */
const CLOCK_WATCH_INTERVAL_MS = 5_000;
const CLOCK_JUMP_THRESHOLD_MS = 10_000;
/** A logout's redirect back is recognised this long. */
const LOGOUT_RETURN_TTL_MS = 10 * 60_000;
/** Default of token.get's waitMs. */
const DEFAULT_TOKEN_WAIT_MS = 10_000;
/**
 * Profiles restored at the same time after start. Small on purpose: each keychain call occupies one of
 * libuv's 4 pool threads until it returns, and a hung keychain must not take them all (DNS lookups and
 * file access share the pool).
 */
const RESTORE_CONCURRENCY = 2;

type BrokerHandlers = Omit<Handlers, 'status' | 'reload'>;

export class Broker {
  private readonly sessions = new Map<string, Session>();
  private readonly logoutReturns = new Map<string, { readonly profile: string; readonly until: number }>();
  private clockWatch: ClockWatch | undefined;
  private readonly now: () => number;
  /** Revocations logouts still owe the provider, kept in the keychain (crash safety). */
  readonly revocations: PendingRevocations;
  /** The config in force (replaced by applyConfig on a reload). */
  private config: BrokerConfig;

  constructor(private readonly options: BrokerOptions) {
    this.now = options.now ?? Date.now;
    this.config = options.config;
    this.revocations = new PendingRevocations({
      store: options.store,
      http: createHttpClient(),
      log: options.log,
      resolveEndpoint: async (record) => {
        const profile = this.config.profiles.get(record.profile);
        if (!profile || profile.issuer !== record.issuer || profile.clientId !== record.clientId) return undefined;
        return (await this.sessions.get(record.profile)!.providerMetadata()).revocationEndpoint;
      },
      clientAuth: (record) => {
        const profile = this.config.profiles.get(record.profile);
        if (!profile || profile.issuer !== record.issuer || profile.clientId !== record.clientId) return undefined;
        return clientAuthentication(profile);
      },
    });
    for (const profile of this.config.profiles.values()) this.sessions.set(profile.name, this.createSession(profile));
  }

  private createSession(profile: ProfileConfig): Session {
    const { options } = this;
    return new Session({
      ...this.profileDeps(profile),
      store: options.store,
      log: options.log,
      publish: options.publish,
      openBrowser: options.openBrowser,
      onLoopbackCallback: (url, caller) => this.loopbackCallback(url, caller),
      expectLogoutReturn: (state, name) => this.logoutReturns.set(state, { profile: name, until: this.now() + LOGOUT_RETURN_TTL_MS }),
      now: this.now,
      revocations: this.revocations,
    });
  }

  /** What a session takes from its profile's settings. */
  private profileDeps(profile: ProfileConfig) {
    const http = createHttpClient({ timeoutMs: profile.httpTimeoutSeconds * 1000, retry: profile.refresh.retry });
    return { profile, isDefault: profile.name === this.config.defaultProfile, http, metadata: () => resolveProviderMetadata(profile, http) };
  }

  /** The settings of a configured profile (undefined when there is none). */
  profileConfig(name: string): ProfileConfig | undefined {
    return this.config.profiles.get(name);
  }

  /**
   * Puts a new (valid) config in force without dropping a connection: added profiles get a session
   * (restored from the keychain if it holds one); removed ones are signed out in memory (keychain entry
   * kept); changed ones keep their session when issuer and client id are the same, and start over
   * otherwise (a new session that reads the keychain, where the binding check finds the entry is not
   * theirs: sign-in required). Subscribers get profileAdded / profileRemoved / profileChanged.
   */
  applyConfig(next: BrokerConfig): ConfigDiff {
    const diff = diffConfigs(this.config, next);
    const { log, publish } = this.options;
    const previous = new Map(this.sessions);
    this.config = next;
    this.sessions.clear();
    const successors: Array<{ readonly session: Session; readonly after: Promise<void> }> = [];
    const changes = new Map(diff.changed.map((change) => [change.name, change]));
    for (const profile of next.profiles.values()) {
      const old = previous.get(profile.name);
      const change = changes.get(profile.name);
      if (old !== undefined && (change === undefined || change.keepsSession)) {
        old.reconfigure(this.profileDeps(profile)); // also the default flag of unchanged profiles
        this.sessions.set(profile.name, old);
        continue;
      }
      const session = this.createSession(profile);
      this.sessions.set(profile.name, session);
      successors.push({ session, after: old === undefined ? Promise.resolve() : old.retire('the profile’s issuer or client id changed in the config') });
    }
    for (const name of diff.removed) void previous.get(name)!.retire('the profile was removed from the config');
    for (const { session, after } of successors) {
      void after
        .then(() => session.restoreOnce())
        .catch((error: unknown) =>
          log.error({ profile: session.name, err: { message: (error as Error).message } }, 'could not read the keychain; will retry when an app asks'),
        );
    }
    for (const profile of diff.added) publish({ event: 'profileAdded', data: { profile: profile.name } });
    for (const name of diff.removed) publish({ event: 'profileRemoved', data: { profile: name } });
    for (const change of diff.changed) publish({ event: 'profileChanged', data: { profile: change.name, sessionKept: change.keepsSession } });
    return diff;
  }

  /**
   * Brings back sessions stored in the keychain, after the daemon listens: a few profiles at a time,
   * each in state `restoring` until its entry is read (a `token.get` for a profile waits for that profile
   * only, and starts its restore at once). One profile's failure does not stop the others. First, the
   * revocations earlier logouts still owe are read, so that a logout cut short is finished, not undone;
   * they are then sent in the background.
   */
  async restore(): Promise<void> {
    this.watchClock();
    const { log } = this.options;
    try {
      await this.revocations.load();
    } catch (error) {
      log.warn({ err: { message: (error as Error).message } }, 'could not read the pending revocations; will retry');
    }
    void this.revocations.processAll();
    const sessions = [...this.sessions.values()];
    let next = 0;
    const worker = async () => {
      while (next < sessions.length) {
        const session = sessions[next++]!;
        try {
          await session.restoreOnce();
        } catch (error) {
          log.error({ profile: session.name, err: { message: (error as Error).message } }, 'could not read the keychain; will retry when an app asks');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(RESTORE_CONCURRENCY, sessions.length) }, worker));
  }

  profiles(): ProfileStatus[] {
    return [...this.sessions.values()].map((session) => session.status());
  }

  /** Profile names in config order. */
  profileNames(): string[] {
    return [...this.sessions.keys()];
  }

  profileStatus(name: string): ProfileStatus {
    return this.session(name).status();
  }

  readonly handlers: BrokerHandlers = {
    'token.get': (params, context) =>
      this.session(params.profile).getToken({
        ...(params.minValidSeconds === undefined ? {} : { minValidSeconds: params.minValidSeconds }),
        ...(params.rejected === undefined ? {} : { rejected: params.rejected }),
        ...(params.scopes === undefined ? {} : { scopes: params.scopes }),
        ...(params.resource === undefined ? {} : { resource: params.resource }),
        ...(params.kind === undefined ? {} : { kind: params.kind }),
        waitMs: params.waitMs ?? DEFAULT_TOKEN_WAIT_MS,
        signal: context.signal,
      }),

    login: async (params, context) => {
      const session = this.session(params.profile);
      const { login, joined } = await session.startSignIn({ openBrowser: params.openBrowser ?? true, ...(params.device ? { device: true } : {}) });
      if (!params.wait) {
        if (login instanceof DeviceLogin) {
          // RFC 8628 §3.3: what the user needs on the other device (never the device code).
          return {
            profile: session.name,
            state: session.state,
            authorizationUrl: login.url,
            startedAt: login.startedAt,
            timesOutAt: login.timesOutAt,
            joined,
            device: login.device,
          };
        }
        return {
          profile: session.name,
          state: session.state,
          // The one-time launcher, not the authorization URL (see session/login-flow.ts).
          authorizationUrl: login.launchUrl,
          startedAt: login.startedAt,
          timesOutAt: login.timesOutAt,
          joined,
          ...(login.metadata.deviceAuthorizationEndpoint === undefined ? {} : { deviceFlowAvailable: true }),
        };
      }
      const outcome = await login.wait(context.signal);
      return { profile: session.name, state: session.state, joined, ...outcome };
    },

    'login.cancel': (params) => {
      const session = this.session(params.profile);
      return { profile: session.name, cancelled: session.cancelLogin() };
    },

    logout: async (params) => {
      const session = this.session(params.profile);
      return { profile: session.name, ...(await session.logout(params.openBrowser ?? true)) };
    },

    // Our socket is 0600: whoever sends this is the user (the custom-scheme handler, or an app).
    callback: (params) => this.callback(params.url, { fromUser: true }),
  };

  /**
   * A redirect from the browser. Accepted only for a pending login (or logout) with the same `state`
   * and the same redirect URI; anything refused before the code exchange changes nothing (see
   * Session.completeLogin). `fromUser`: delivered by the user's own side (socket, or a loopback
   * caller whose uid was checked).
   */
  async callback(url: string, origin: { readonly fromUser: boolean }): Promise<CallbackResult> {
    const state = extractState(url);
    if (state === undefined) throw new BrokerError('LOGIN_FAILED', 'the redirect carries no state parameter; it does not answer any sign-in');
    for (const session of this.sessions.values()) {
      const login = session.pendingLogin;
      if (login?.state !== state) continue;
      if (!login.matchesRedirect(url)) {
        throw new BrokerError('LOGIN_FAILED', `the redirect arrived at a different address than ${session.name}'s sign-in asked for; ignored`);
      }
      const outcome = await session.completeLogin(login, url, origin.fromUser);
      return {
        profile: session.name,
        kind: 'login',
        message: `signed in to ${session.name}${outcome.email ? ` as ${outcome.email}` : outcome.subject ? ` as ${outcome.subject}` : ''}`,
      };
    }
    const logoutReturn = this.logoutReturns.get(state);
    if (logoutReturn && logoutReturn.until > this.now()) {
      this.logoutReturns.delete(state);
      return { profile: logoutReturn.profile, kind: 'logout', message: `signed out of ${logoutReturn.profile} at the provider` };
    }
    throw new BrokerError('LOGIN_FAILED', 'unknown or already used state: this sign-in timed out, was cancelled, or the redirect was replayed');
  }

  private async loopbackCallback(url: string, caller: Caller): Promise<{ ok: boolean; message: string }> {
    try {
      return { ok: true, message: (await this.callback(url, { fromUser: caller.verifiedUser })).message };
    } catch (error) {
      return { ok: false, message: error instanceof BrokerError ? error.message : 'the sign-in failed' };
    }
  }

  private session(name: string | undefined): Session {
    const profile = name ?? this.config.defaultProfile;
    if (profile === undefined) {
      throw new BrokerError(
        'PROFILE_NOT_FOUND',
        this.sessions.size === 0
          ? 'no profiles are configured (see the README: Configuration)'
          : `several profiles exist and none is the default; name one (${[...this.sessions.keys()].join(', ')})`,
      );
    }
    const session = this.sessions.get(profile);
    if (!session)
      throw new BrokerError('PROFILE_NOT_FOUND', `no profile named "${profile}" (configured: ${[...this.sessions.keys()].join(', ') || 'none'})`, {
        field: 'params.profile',
      });
    return session;
  }

  /**
   * Timers do not run while a laptop sleeps. A tick that arrives much later than planned means the
   * wall clock moved: every session re-checks at once (see session/clock-watch.ts).
   */
  private watchClock(): void {
    this.clockWatch?.stop();
    this.clockWatch = startClockWatch({
      intervalMs: CLOCK_WATCH_INTERVAL_MS,
      thresholdMs: CLOCK_JUMP_THRESHOLD_MS,
      now: this.now,
      onJump: (driftMs) => {
        this.options.log.info({ driftMs }, 'wall clock jumped (sleep or clock change): re-checking sessions');
        for (const session of this.sessions.values()) session.onClockJump(driftMs);
      },
    });
  }

  dispose(): void {
    this.clockWatch?.stop();
    this.revocations.dispose();
    for (const session of this.sessions.values()) session.dispose();
  }
}
