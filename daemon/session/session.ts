/**
 * One profile's session and its state machine:
 *
 *   logged-out → logging-in → active ⇄ refreshing → login-required
 *
 * Every change of tokens (refresh, login completion, logout) runs through one p-queue with
 * concurrency 1, and concurrent refresh requests share the one in flight: one queued refresh at a time.
 */
import PQueue from 'p-queue';
import { BrokerError, type BrokerEvent, type LastRefresh, type ProfileState, type ProfileStatus, type TokenResult } from '../../proto/index.js';
import type { OpenBrowser } from '../browser.js';
import type { ProfileConfig } from '../config.js';
import type { Logger } from '../log.js';
import {
  ProviderEndpointError,
  exchangeAuthorizationCode,
  parseAuthorizationResponse,
  refreshAccessToken,
  validateIdToken,
  type HttpClient,
  type ProviderMetadata,
} from '../oauth/index.js';
import type { StoredTokens, TokenStore } from '../store/keychain.js';
import { randomUrlSafe } from '../oauth/pkce.js';
import { PendingLogin, type LoginOutcome } from './login-flow.js';
import { logout, type LogoutOutcome } from './logout.js';
import { MAX_TIMER_MS, nextAttemptAt, plannedRefreshAt } from './schedule.js';

export interface SessionDeps {
  readonly profile: ProfileConfig;
  readonly isDefault: boolean;
  readonly store: TokenStore;
  readonly http: HttpClient;
  readonly log: Logger;
  readonly metadata: () => Promise<ProviderMetadata>;
  readonly publish: (event: BrokerEvent) => void;
  readonly openBrowser: OpenBrowser;
  /** Delivers a loopback redirect to the broker's callback handling. */
  readonly onLoopbackCallback: (url: string) => Promise<{ ok: boolean; message: string }>;
  /** Remembers a pending provider logout, so its redirect back is recognised. */
  readonly expectLogoutReturn: (state: string, profile: string) => void;
  readonly now?: () => number;
}

export interface TokenRequest {
  readonly minValidSeconds?: number;
  /** How long to wait for a refresh before answering IDP_UNAVAILABLE. */
  readonly waitMs: number;
  readonly rejected?: string;
  readonly signal: AbortSignal;
}

export interface LoginStart {
  readonly login: PendingLogin;
  readonly joined: boolean;
}

export class Session {
  private stateValue: ProfileState = 'logged-out';
  private tokens: StoredTokens | undefined;
  private readonly queue = new PQueue({ concurrency: 1 });
  private refreshing: Promise<StoredTokens> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerAt: number | undefined;
  private failures = 0;
  private retryAt = 0;
  private lastRefresh: LastRefresh | undefined;
  private reason: string | undefined;
  private pending: PendingLogin | undefined;
  /** After a permanent failure: the browser has been sent once for it (policy "on-demand"). */
  private reloginOpened = false;
  private readonly now: () => number;

  constructor(private readonly deps: SessionDeps) {
    this.now = deps.now ?? Date.now;
  }

  get name(): string {
    return this.deps.profile.name;
  }

  get state(): ProfileState {
    return this.stateValue;
  }

  get pendingLogin(): PendingLogin | undefined {
    return this.pending;
  }

  /** The keychain could not be read at start; try again when an app asks. */
  private restorePending = false;

  /**
   * On daemon start: a session whose tokens are in the keychain comes back active. A keychain that
   * cannot be read is retried when an app next asks (its error is what that app gets).
   */
  async restore(): Promise<void> {
    let tokens: StoredTokens | undefined;
    try {
      tokens = await this.deps.store.load(this.name);
      this.restorePending = false;
      if (this.reason === 'keychain_unavailable') this.reason = undefined;
    } catch (error) {
      this.restorePending = true;
      this.reason = 'keychain_unavailable';
      throw error;
    }
    if (!tokens) return;
    if (!tokens.refreshToken && tokens.expiresAt <= this.now()) {
      this.deps.log.info({ profile: this.name }, 'stored access token expired and there is no refresh token: sign-in needed');
      return;
    }
    this.install(tokens);
    this.deps.log.info({ profile: this.name, expiresAt: new Date(tokens.expiresAt).toISOString() }, 'session restored from the keychain');
  }

  status(): ProfileStatus {
    const { profile } = this.deps;
    const t = this.tokens;
    return {
      name: profile.name,
      isDefault: this.deps.isDefault,
      state: this.stateValue,
      provider: profile.provider,
      issuer: profile.issuer,
      onRefreshFailure: profile.onRefreshFailure,
      ...(t?.subject === undefined ? {} : { subject: t.subject }),
      ...(t?.email === undefined ? {} : { email: t.email }),
      ...(t === undefined ? {} : { scopes: t.scopes, expiresAt: t.expiresAt }),
      ...(this.timerAt === undefined || t === undefined ? {} : { nextRefreshAt: this.timerAt }),
      ...(this.lastRefresh === undefined ? {} : { lastRefresh: this.lastRefresh }),
      ...(this.failures > 0 ? { consecutiveFailures: this.failures } : {}),
      ...(this.pending === undefined ? {} : { loginStartedAt: this.pending.startedAt }),
      ...(this.reason === undefined ? {} : { reason: this.reason }),
    };
  }

  // ---- token.get -------------------------------------------------------------------------------

  async getToken(request: TokenRequest): Promise<TokenResult> {
    if (!this.tokens && this.restorePending) await this.restore();
    if (!this.tokens) return this.noSession();
    const minValidMs = (request.minValidSeconds ?? this.deps.profile.refresh.minValidSeconds) * 1000;
    const current = this.tokens;
    if (request.rejected !== undefined) {
      // The app's API refused this token. A newer one already? Hand it out. Otherwise refresh (shared).
      if (!current.accessToken.equals(request.rejected)) {
        if (current.expiresAt > this.now()) return this.result(current);
      }
      return this.result(await this.refreshWithin(request, true));
    }
    if (current.expiresAt - this.now() >= minValidMs) return this.result(current);
    return this.result(await this.refreshWithin(request, false));
  }

  /**
   * Refreshes (or joins the refresh in flight), honouring the backoff: never more attempts than the
   * schedule allows, however many apps ask. Returns a still-valid token when the provider fails.
   */
  private async refreshWithin(request: TokenRequest, force: boolean): Promise<StoredTokens> {
    const deadline = this.now() + request.waitMs;
    const before = this.tokens;
    for (;;) {
      if (!this.tokens) return this.noSession();
      if (force && this.tokens !== before && this.tokens.expiresAt > this.now()) return this.tokens;
      let attempt: Promise<StoredTokens> | undefined = this.refreshing;
      if (!attempt && this.now() >= this.retryAt) attempt = this.refresh('on demand');
      if (attempt) {
        try {
          return await raceDeadline(attempt, deadline, request.signal, () => this.unavailable());
        } catch (error) {
          if (!(error instanceof BrokerError) || error.code !== 'IDP_UNAVAILABLE') throw error;
          if (this.tokens && this.tokens.expiresAt > this.now()) return this.tokens; // still valid: serve it
          if (this.now() >= deadline) throw error;
          continue;
        }
      }
      if (this.tokens.expiresAt > this.now() && !force) return this.tokens;
      if (this.retryAt > deadline) throw this.unavailable();
      await sleepUntil(this.retryAt, request.signal, this.now);
    }
  }

  private unavailable(): BrokerError {
    return new BrokerError(
      'IDP_UNAVAILABLE',
      `${this.name}: the provider is not answering; the broker tries again at ${new Date(this.retryAt).toISOString()}`,
      { retryAt: Math.max(this.retryAt, this.now()) },
    );
  }

  private noSession(): never {
    const { profile } = this.deps;
    if (this.stateValue === 'login-required' && profile.reloginBrowser === 'on-demand' && !this.reloginOpened) {
      // One browser window per failure, when an app first needs the session back.
      this.reloginOpened = true;
      this.startLogin({ openBrowser: true }).catch((error: unknown) =>
        this.deps.log.warn({ profile: this.name, err: { message: (error as Error).message } }, 'could not start the re-login'),
      );
      throw new BrokerError('LOGIN_REQUIRED', `${this.name}: the session ended (${this.reason ?? 'signed out'}); a browser window was opened to sign in again`);
    }
    const hint = this.pending ? 'a sign-in is in progress in the browser' : `run "tokenbroker login --profile ${this.name}"`;
    throw new BrokerError('LOGIN_REQUIRED', `${this.name}: not signed in; ${hint}`);
  }

  private result(tokens: StoredTokens): TokenResult {
    return {
      profile: this.name,
      accessToken: tokens.accessToken.reveal(),
      tokenType: tokens.tokenType,
      expiresAt: tokens.expiresAt,
      scopes: tokens.scopes,
    };
  }

  // ---- refresh ---------------------------------------------------------------------------------

  /** Starts a refresh, or returns the one in flight. */
  refresh(why: string): Promise<StoredTokens> {
    this.refreshing ??= this.queue
      .add(() => this.refreshNow(why))
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }

  private async refreshNow(why: string): Promise<StoredTokens> {
    const tokens = this.tokens;
    if (!tokens) throw new BrokerError('LOGIN_REQUIRED', `${this.name}: not signed in`);
    if (!tokens.refreshToken) {
      await this.requireLogin('no_refresh_token');
      throw new BrokerError('LOGIN_REQUIRED', `${this.name}: the access token expired and the provider issued no refresh token`);
    }
    const { profile, http, log } = this.deps;
    this.setState('refreshing');
    log.debug({ profile: this.name, why }, 'refreshing the access token');
    try {
      const metadata = await this.deps.metadata();
      const set = await refreshAccessToken({ http, metadata, clientId: profile.clientId, refreshToken: tokens.refreshToken, grantedScopes: tokens.scopes });
      let { subject, email } = tokens;
      if (set.idToken) {
        // OIDC Core §12.2: a refreshed ID token must name the same subject.
        const claims = await validateIdToken(set.idToken, {
          metadata,
          clientId: profile.clientId,
          ...(subject === undefined ? {} : { expectedSubject: subject }),
        });
        subject = claims.sub;
        email = claims.email ?? email;
      }
      const next: StoredTokens = {
        accessToken: set.accessToken,
        ...(set.refreshToken ?? tokens.refreshToken ? { refreshToken: set.refreshToken ?? tokens.refreshToken } : {}),
        ...(set.idToken ?? tokens.idToken ? { idToken: set.idToken ?? tokens.idToken } : {}),
        expiresAt: set.expiresAt,
        scopes: set.scopes,
        tokenType: set.tokenType,
        ...(subject === undefined ? {} : { subject }),
        ...(email === undefined ? {} : { email }),
        savedAt: this.now(),
      };
      await this.persistRefreshed(next, set.refreshToken !== undefined);
      this.failures = 0;
      this.retryAt = 0;
      this.reason = undefined;
      this.lastRefresh = { at: this.now(), ok: true };
      this.install(next);
      this.deps.publish({ event: 'tokenRefreshed', data: { profile: this.name, expiresAt: next.expiresAt } });
      log.info({ profile: this.name, why, expiresAt: new Date(next.expiresAt).toISOString(), rotated: set.refreshToken !== undefined }, 'access token refreshed');
      return next;
    } catch (error) {
      throw await this.refreshFailed(error);
    }
  }

  /**
   * The new tokens reach the keychain before anyone gets the new access token. With rotation, the new
   * refresh token is the only one that works from now on: failing to store it is loud.
   */
  private async persistRefreshed(next: StoredTokens, rotated: boolean): Promise<void> {
    try {
      await this.deps.store.save(this.name, next);
    } catch (error) {
      if (rotated) {
        this.deps.log.error(
          { profile: this.name, err: { message: (error as Error).message } },
          'ROTATED REFRESH TOKEN NOT SAVED: the keychain refused it; the session works until the daemon stops, then needs a new sign-in',
        );
        this.reason = 'keychain_write_failed';
      } else {
        this.deps.log.warn({ profile: this.name, err: { message: (error as Error).message } }, 'could not save refreshed tokens (the stored refresh token still works)');
      }
    }
  }

  private async refreshFailed(error: unknown): Promise<BrokerError> {
    const { log, profile } = this.deps;
    const transient =
      (error instanceof ProviderEndpointError && error.kind === 'transient') ||
      (error instanceof BrokerError && error.code === 'IDP_UNAVAILABLE');
    if (transient) {
      this.failures++;
      const retryAfterMs = error instanceof ProviderEndpointError ? error.retryAfterMs : undefined;
      this.retryAt = nextAttemptAt(this.now(), this.failures, profile.refresh, retryAfterMs);
      this.lastRefresh = { at: this.now(), ok: false, code: 'IDP_UNAVAILABLE' };
      this.setState('active');
      this.arm();
      log.warn({ profile: this.name, failures: this.failures, retryAt: new Date(this.retryAt).toISOString(), err: { message: (error as Error).message } }, 'refresh failed; will retry');
      this.deps.publish({ event: 'refreshFailed', data: { profile: this.name, code: 'IDP_UNAVAILABLE', retryAt: this.retryAt } });
      return this.unavailable();
    }
    // Permanent: invalid_grant (expired, revoked, tampered), invalid_client, other 4xx, a bad ID token.
    const reason = error instanceof ProviderEndpointError ? (error.oauthError ?? `http_${error.status ?? 'error'}`) : error instanceof BrokerError ? error.code.toLowerCase() : 'internal_error';
    this.lastRefresh = { at: this.now(), ok: false, code: error instanceof BrokerError ? error.code : 'INTERNAL' };
    log.warn({ profile: this.name, reason, err: { message: (error as Error).message } }, 'refresh failed permanently; sign-in required');
    this.deps.publish({ event: 'refreshFailed', data: { profile: this.name, code: 'LOGIN_REQUIRED' } });
    await this.requireLogin(reason);
    return new BrokerError('LOGIN_REQUIRED', `${this.name}: the provider refused the refresh (${reason}); sign-in required`);
  }

  /** A permanent failure: drop the tokens, tell the apps, and apply the profile's policy. */
  private async requireLogin(reason: string): Promise<void> {
    const { profile, log } = this.deps;
    const ended = this.tokens;
    this.clearTokens();
    this.reason = reason;
    this.reloginOpened = false;
    try {
      await this.deps.store.delete(this.name);
    } catch (error) {
      log.warn({ profile: this.name, err: { message: (error as Error).message } }, 'could not delete the dead tokens from the keychain');
    }
    this.setState('login-required');
    this.deps.publish({ event: 'loginRequired', data: { profile: this.name, reason } });
    if (profile.onRefreshFailure === 'logout' && ended) {
      // Full logout: end the provider session too, so the next sign-in asks for credentials.
      await this.endProviderSession(ended, profile.reloginBrowser === 'immediately');
    }
    if (profile.reloginBrowser === 'immediately') {
      this.reloginOpened = true;
      void this.startLogin({ openBrowser: true }).catch((error: unknown) =>
        log.warn({ profile: this.name, err: { message: (error as Error).message } }, 'could not start the re-login'),
      );
    }
  }

  private async endProviderSession(ended: StoredTokens, openBrowser: boolean): Promise<void> {
    try {
      await logout({ ...this.logoutDeps(), tokens: ended, showLogoutPage: openBrowser, revoke: false });
    } catch (error) {
      this.deps.log.warn({ profile: this.name, err: { message: (error as Error).message } }, 'provider logout after a failed refresh did not complete');
    }
  }

  // ---- timers ----------------------------------------------------------------------------------

  /** Arms the refresh timer: ahead of expiry, or at the next backoff slot after failures. */
  private arm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = undefined;
    const tokens = this.tokens;
    if (!tokens?.refreshToken) return;
    const planned = plannedRefreshAt(tokens.savedAt, tokens.expiresAt, this.deps.profile.refresh);
    const at = this.failures > 0 ? this.retryAt : planned;
    this.timerAt = at;
    const delay = Math.min(Math.max(0, at - this.now()), MAX_TIMER_MS);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.now() < at - 1000) return this.arm(); // a timer capped at MAX_TIMER_MS, or the clock moved back
      this.refresh('timer').catch(() => {
        /* recorded in status and events; the next attempt is armed */
      });
    }, delay);
  }

  /**
   * The wall clock jumped (the machine slept, or the clock was set): timers fired late or not at all.
   * Refresh at once if the token is due; otherwise re-arm against the new time.
   */
  onClockJump(): void {
    const tokens = this.tokens;
    if (!tokens) return;
    if (this.timerAt !== undefined && this.timerAt <= this.now() && this.now() >= this.retryAt) {
      this.refresh('clock jump').catch(() => {});
    } else this.arm();
  }

  // ---- login -----------------------------------------------------------------------------------

  /** Starts a browser login, or joins the one under way (or being set up). */
  async startLogin(options: { openBrowser: boolean; extraParams?: Readonly<Record<string, string>> }): Promise<LoginStart> {
    if (this.pending) return { login: this.pending, joined: true };
    if (this.starting) return { login: await this.starting, joined: true };
    const starting = this.beginLogin(options);
    this.starting = starting;
    try {
      return { login: await starting, joined: false };
    } finally {
      this.starting = undefined;
    }
  }

  private starting: Promise<PendingLogin> | undefined;

  private async beginLogin(options: { openBrowser: boolean; extraParams?: Readonly<Record<string, string>> }): Promise<PendingLogin> {
    const metadata = await this.deps.metadata();
    const forceLogin = this.stateValue === 'login-required' && this.deps.profile.onRefreshFailure === 'logout';
    const login = await PendingLogin.start({
      profile: this.deps.profile,
      metadata,
      extraParams: { ...(forceLogin ? { prompt: 'login' } : {}), ...options.extraParams },
      onLoopbackCallback: this.deps.onLoopbackCallback,
      onTimeout: (timedOut) => this.endLogin(timedOut, new BrokerError('LOGIN_TIMEOUT', `${this.name}: the sign-in was not completed within ${this.deps.profile.loginTimeoutSeconds} s`)),
      now: this.now,
    });
    this.pending = login;
    if (!this.tokens) this.setState('logging-in');
    this.deps.log.info({ profile: this.name, redirect: login.redirectUri === this.deps.profile.redirectUri ? 'custom-scheme' : 'loopback' }, 'login started');
    if (options.openBrowser) await this.deps.openBrowser(login.url);
    return login;
  }

  cancelLogin(): boolean {
    const login = this.pending;
    if (!login) return false;
    this.endLogin(login, new BrokerError('LOGIN_CANCELLED', `${this.name}: the sign-in was cancelled`));
    return true;
  }

  /**
   * The redirect for this session's pending login arrived (custom scheme or loopback). The state is
   * single-use: the pending login is taken first, so a replay finds nothing.
   */
  async completeLogin(login: PendingLogin, url: string): Promise<LoginOutcome> {
    this.pending = undefined;
    try {
      const outcome = await this.queue.add(() => this.exchange(login, url));
      login.succeed(outcome);
      return outcome;
    } catch (error) {
      const failure = error instanceof BrokerError ? error : new BrokerError('LOGIN_FAILED', `${this.name}: the sign-in failed unexpectedly`);
      if (!(error instanceof BrokerError)) this.deps.log.error({ err: error }, 'unexpected error completing a login');
      this.endLogin(login, failure);
      throw failure;
    }
  }

  private async exchange(login: PendingLogin, url: string): Promise<LoginOutcome> {
    const { profile, http } = this.deps;
    const { metadata } = login;
    // RFC 9207 §2.4: `iss` must match when present (and be present when the provider says it sends it).
    const { code } = parseAuthorizationResponse(url, {
      state: login.state,
      issuer: metadata.issuer,
      issRequired: metadata.authorizationResponseIssParameterSupported,
    });
    const set = await exchangeAuthorizationCode({
      http,
      metadata,
      clientId: profile.clientId,
      code,
      codeVerifier: login.request.codeVerifier,
      redirectUri: login.redirectUri,
      requestedScopes: profile.scopes,
    }).catch((error: unknown) => {
      if (error instanceof BrokerError && error.code === 'LOGIN_REQUIRED') {
        throw new BrokerError('LOGIN_FAILED', `${this.name}: the provider rejected the authorization code (${(error as ProviderEndpointError).oauthError ?? 'invalid_grant'})`);
      }
      throw error;
    });
    if (!set.idToken) throw new BrokerError('LOGIN_FAILED', `${this.name}: the provider returned no ID token (is "openid" in scopes?)`);
    // OIDC Core §3.1.3.7: signature, iss, aud, exp, and the nonce of this very request.
    const claims = await validateIdToken(set.idToken, { metadata, clientId: profile.clientId, nonce: login.request.nonce, accessToken: set.accessToken });
    const tokens: StoredTokens = {
      accessToken: set.accessToken,
      ...(set.refreshToken ? { refreshToken: set.refreshToken } : {}),
      idToken: set.idToken,
      expiresAt: set.expiresAt,
      scopes: set.scopes,
      tokenType: set.tokenType,
      subject: claims.sub,
      ...(claims.email === undefined ? {} : { email: claims.email }),
      savedAt: this.now(),
    };
    // Keychain first: a login whose tokens cannot be kept fails, and the previous session stays.
    await this.deps.store.save(this.name, tokens);
    this.failures = 0;
    this.retryAt = 0;
    this.reason = undefined;
    this.install(tokens);
    this.deps.publish({ event: 'loggedIn', data: { profile: this.name, subject: claims.sub, expiresAt: tokens.expiresAt } });
    this.deps.log.info({ profile: this.name, subject: claims.sub, refreshToken: tokens.refreshToken !== undefined }, 'signed in');
    return { subject: claims.sub, ...(claims.email === undefined ? {} : { email: claims.email }), expiresAt: tokens.expiresAt };
  }

  private endLogin(login: PendingLogin, error: BrokerError): void {
    if (this.pending === login) this.pending = undefined;
    login.abandon(error);
    if (this.stateValue === 'logging-in') this.setState(this.reason ? 'login-required' : 'logged-out');
    this.deps.log.info({ profile: this.name, code: error.code }, 'login ended without a session');
    this.deps.publish({ event: 'loginFailed', data: { profile: this.name, code: error.code, message: error.message } });
  }

  // ---- logout ----------------------------------------------------------------------------------

  /** The provider's logout flow, in the guide's order; see logout.ts. */
  async logout(openBrowser: boolean): Promise<LogoutOutcome> {
    return this.queue.add(
      async () => {
        if (this.pending) this.endLogin(this.pending, new BrokerError('LOGIN_CANCELLED', `${this.name}: signed out`));
        const tokens = this.tokens ?? (await this.deps.store.load(this.name));
        const outcome = await logout({ ...this.logoutDeps(), tokens, showLogoutPage: openBrowser, revoke: true });
        this.clearTokens();
        this.reason = undefined;
        this.failures = 0;
        this.retryAt = 0;
        this.setState('logged-out');
        this.deps.publish({ event: 'loggedOut', data: { profile: this.name } });
        return outcome;
      },
    );
  }

  private logoutDeps() {
    const { profile, store, http, log, openBrowser } = this.deps;
    return {
      profile,
      store,
      http,
      log,
      openBrowser,
      metadata: this.deps.metadata,
      newState: () => randomUrlSafe(),
      expectReturn: (state: string) => this.deps.expectLogoutReturn(state, profile.name),
    };
  }

  // ---- internals -------------------------------------------------------------------------------

  private install(tokens: StoredTokens): void {
    this.tokens = tokens;
    this.setState('active');
    this.arm();
  }

  private clearTokens(): void {
    this.tokens = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = undefined;
  }

  private setState(next: ProfileState): void {
    const previous = this.stateValue;
    if (previous === next) return;
    this.stateValue = next;
    this.deps.log.debug({ profile: this.name, from: previous, to: next }, 'state');
    this.deps.publish({ event: 'stateChanged', data: { profile: this.name, state: next, previous } });
  }

  /** Stops timers (daemon shutdown). */
  dispose(): void {
    clearTimeout(this.timer);
    if (this.pending) this.pending.abandon(new BrokerError('SHUTTING_DOWN', 'the daemon is stopping'));
  }
}

/** Resolves or rejects with `attempt`, unless the deadline or the signal comes first. */
function raceDeadline<T>(attempt: Promise<T>, deadline: number, signal: AbortSignal, late: () => BrokerError): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(late()), Math.max(0, deadline - Date.now()));
    const onAbort = () => reject(new BrokerError('CONNECTION_LOST', 'the client went away'));
    signal.addEventListener('abort', onAbort, { once: true });
    attempt.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    });
  });
}

function sleepUntil(at: number, signal: AbortSignal, now: () => number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(finish, Math.max(0, at - now()));
    function finish() {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }
    function onAbort() {
      clearTimeout(timer);
      reject(new BrokerError('CONNECTION_LOST', 'the client went away'));
    }
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
