/**
 * One profile's session and its state machine:
 *
 *   logged-out → logging-in → active ⇄ refreshing → login-required
 *
 * Every change of tokens (refresh, login completion, logout) runs through one p-queue with
 * concurrency 1, and concurrent refresh requests share the one in flight: one queued refresh at a time.
 *
 * The parts: schedule.ts (when to refresh, how long a token is good for, backoff), refresh-timer.ts,
 * token-requests.ts (the token-endpoint calls, failure classification), failure-policy.ts (after a
 * permanent failure), login-slot.ts + login-flow.ts (the pending browser login), logout.ts, wait.ts,
 * clock-watch.ts (used by the Broker).
 */
import PQueue from 'p-queue';
import { BrokerError, type LastRefresh, type ProfileState, type ProfileStatus, type TokenResult } from '../../proto/index.js';
import type { ProviderMetadata } from '../oauth/index.js';
import type { Secret } from '../secret.js';
import type { StoredTokens } from '../store/types.js';
import { randomUrlSafe } from '../oauth/pkce.js';
import type { DeviceLogin, DeviceTokens } from './device-login.js';
import { deviceCodeGrant } from './device-grant.js';
import { PendingLogin, type LoginOutcome } from './login-flow.js';
import { logout, type LogoutOutcome } from './logout.js';
import { bindingProblem } from './binding.js';
import { FailurePolicy } from './failure-policy.js';
import { LoginSlot, type LoginStart, type LoginStartOptions } from './login-slot.js';
import { RefreshTimer } from './refresh-timer.js';
import { minValidMarginMs, needsRefresh, nextAttemptAt, plannedRefreshAt } from './schedule.js';
import { DerivedTokens, normalise, type DerivedEntry, type DerivedToken } from './derived-tokens.js';
import { idTokenTimes } from './id-token-times.js';
import { AuthorizationResponseError, ProviderEndpointError, preloadProviderModules } from '../oauth/index.js';
import {
  authorizationCodeGrant,
  checkLoginRedirect,
  classifyRefreshFailure,
  ClockSkewError,
  describeClockSkew,
  refreshGrant,
  UnverifiedRefresh,
  type TokenRequestDeps,
} from './token-requests.js';
import type { SessionDeps, TokenRequest } from './types.js';
import { raceDeadline, sleepUntil } from './wait.js';

export type { SessionDeps, TokenRequest } from './types.js';
export type { LoginStart } from './login-slot.js';

/** A clock further off than this (from the provider's) is logged as a warning. @see doctor's SKEW_WARN_SECONDS */
const CLOCK_SKEW_WARN_MS = 30_000;

export class Session {
  /** `restoring` until the start-up read of the keychain entry has ended (see restoreOnce()). */
  private stateValue: ProfileState = 'restoring';
  private tokens: StoredTokens | undefined;
  private readonly queue = new PQueue({ concurrency: 1 });
  private refreshing: Promise<StoredTokens> | undefined;
  private readonly timer: RefreshTimer;
  private failures = 0;
  private retryAt = 0;
  private lastRefresh: LastRefresh | undefined;
  private reason: string | undefined;
  private readonly logins: LoginSlot;
  private readonly policy: FailurePolicy;
  private readonly now: () => number;
  /** The subject of the last session this profile had (kept through logout and failures; from the keychain at start). */
  private lastSubject: string | undefined;
  /** The last account switch: a sign-in that named another subject than `lastSubject`. */
  private accountChange: { readonly previousSubject: string; readonly at: number } | undefined;

  constructor(private deps: SessionDeps) {
    this.now = deps.now ?? Date.now;
    // The login slot and the failure policy read the profile when they act: a reload's new settings reach them.
    const profile = () => this.deps.profile;
    this.timer = new RefreshTimer(
      this.now,
      () => {
        this.refresh('timer').catch(() => {
          /* recorded in status and events; the next attempt is armed */
        });
      },
      preloadProviderModules,
    );
    this.logins = new LoginSlot({
      get profile() {
        return profile();
      },
      log: deps.log,
      metadata: deps.metadata,
      openBrowser: deps.openBrowser,
      onLoopbackCallback: deps.onLoopbackCallback,
      ...(deps.startListener === undefined ? {} : { startListener: deps.startListener }),
      http: deps.http,
      onDeviceTokens: (login, tokens) => this.completeDeviceLogin(login, tokens),
      now: this.now,
      // After a permanent failure under policy "logout", the next sign-in must ask for credentials.
      sessionParams: (): Record<string, string> =>
        this.stateValue === 'login-required' && deps.profile.onRefreshFailure === 'logout' ? { prompt: 'login' } : {},
      onStarted: () => {
        if (!this.tokens) this.setState('logging-in');
      },
      onEnded: (error) => {
        if (this.stateValue === 'logging-in') this.setState(this.reason ? 'login-required' : 'logged-out');
        deps.publish({ event: 'loginFailed', data: { profile: this.name, code: error.code, message: error.message } });
      },
    });
    this.policy = new FailurePolicy({
      get profile() {
        return profile();
      },
      log: deps.log,
      endProviderSession: (ended, options) => this.endProviderSession(ended, options),
      startLogin: () => this.startSignIn({ openBrowser: true }),
    });
  }

  get name(): string {
    return this.deps.profile.name;
  }

  get state(): ProfileState {
    return this.stateValue;
  }

  /** The provider's endpoints (discovery, cached by the broker's resolver). */
  providerMetadata(): Promise<ProviderMetadata> {
    return this.deps.metadata();
  }

  /** The browser sign-in under way, which a redirect may complete (a device sign-in completes itself). */
  get pendingLogin(): PendingLogin | undefined {
    const pending = this.logins.pending;
    return pending instanceof PendingLogin ? pending : undefined;
  }

  /** The keychain could not be read at start; try again when an app asks. */
  private restorePending = false;
  /** The start-up restore, started once by the broker or by the first app that asks. */
  private firstRestore: Promise<void> | undefined;
  /** A restore in flight: callers share it. */
  private restoring: Promise<void> | undefined;

  /**
   * The start-up restore, once: the broker runs it for every profile after the daemon listens, and a
   * `token.get` that arrives first starts it at once for its own profile.
   */
  restoreOnce(): Promise<void> {
    this.firstRestore ??= this.restore();
    return this.firstRestore;
  }

  /**
   * On daemon start: a session whose tokens are in the keychain comes back active. A keychain that
   * cannot be read is retried when an app next asks (its error is what that app gets). Runs in the
   * session's queue, so a logout or sign-in that arrives meanwhile comes after it.
   */
  restore(): Promise<void> {
    this.restoring ??= this.queue
      .add(() => this.restoreNow())
      .finally(() => {
        this.restoring = undefined;
      });
    return this.restoring;
  }

  private async restoreNow(): Promise<void> {
    let tokens: StoredTokens | undefined;
    try {
      if (this.tokens) return; // a sign-in completed first
      tokens = await this.deps.store.load(this.name);
      this.restorePending = false;
      if (this.reason === 'keychain_unavailable') this.reason = undefined;
    } catch (error) {
      this.restorePending = true;
      this.reason = 'keychain_unavailable';
      throw error;
    } finally {
      if (this.stateValue === 'restoring' && !tokens) this.setState('logged-out');
    }
    if (!tokens) return;
    if (this.deps.revocations?.holds(tokens)) {
      // A logout was cut short (crash) after it recorded the revocation and before it deleted this entry:
      // finish it. The token is revoked by the pending-revocation queue, never used again here.
      this.deps.log.warn({ profile: this.name }, 'finishing a logout that was interrupted: the stored session is being revoked');
      await this.deps.store.delete(this.name);
      if (this.stateValue === 'restoring') this.setState('logged-out');
      return;
    }
    // The tokens were issued to another issuer or client than the profile names now: never sent anywhere.
    // The entry stays (pointing the profile back restores the session; a new sign-in replaces it).
    const problem = bindingProblem(tokens, this.deps.profile);
    if (problem) {
      this.reason = problem;
      this.setState('login-required');
      this.deps.log.warn(
        { profile: this.name, reason: problem, storedIssuer: tokens.issuer, issuer: this.deps.profile.issuer },
        'stored tokens belong to another issuer or client than the profile names now: sign-in required (they are not used)',
      );
      return;
    }
    if (!tokens.refreshToken && tokens.expiresAt <= this.now()) {
      this.deps.log.info({ profile: this.name }, 'stored access token expired and there is no refresh token: sign-in needed');
      if (this.stateValue === 'restoring') this.setState('logged-out');
      return;
    }
    this.install(tokens);
    this.deps.log.info({ profile: this.name, expiresAt: new Date(tokens.expiresAt).toISOString() }, 'session restored from the keychain');
  }

  /** token.get while the start-up restore is under way: wait for it (this profile's only), up to waitMs. */
  private async awaitRestore(request: TokenRequest): Promise<void> {
    const started = this.now();
    await raceDeadline(this.restoreOnce(), started + request.waitMs, request.signal, this.now, () => {
      return new BrokerError(
        'KEYCHAIN_UNAVAILABLE',
        `${this.name}: the keychain has not answered for ${Math.round((this.now() - started) / 1000)} s while the daemon reads this profile's session; try again, or run "tokenbroker doctor"`,
      );
    });
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
      ...(t?.username === undefined ? {} : { username: t.username }),
      ...(t === undefined ? {} : { scopes: t.scopes, expiresAt: t.expiresAt }),
      ...(this.timer.at === undefined || t === undefined ? {} : { nextRefreshAt: this.timer.at }),
      ...(this.lastRefresh === undefined ? {} : { lastRefresh: this.lastRefresh }),
      ...(this.failures > 0 ? { consecutiveFailures: this.failures } : {}),
      ...(this.logins.pending === undefined ? {} : { loginStartedAt: this.logins.pending.startedAt }),
      ...(this.reason === undefined ? {} : { reason: this.reason }),
      ...(this.accountChange === undefined ? {} : { previousSubject: this.accountChange.previousSubject, accountChangedAt: this.accountChange.at }),
      ...(this.clockSkewMs === undefined ? {} : { clockSkewSeconds: Math.round(this.clockSkewMs / 100) / 10 }),
    };
  }

  // ---- token.get -------------------------------------------------------------------------------

  async getToken(request: TokenRequest): Promise<TokenResult> {
    if (this.stateValue === 'restoring') await this.awaitRestore(request);
    else if (!this.tokens && this.restorePending) await this.restore();
    if (!this.tokens) return this.noSession();
    const current = this.tokens;
    if (request.kind === 'id') return this.idTokenResult(request);
    if (request.scopes !== undefined || request.resource !== undefined) return this.derivedToken(request, current);
    if (request.rejected !== undefined) {
      // The app's API refused this token. A newer one already? Hand it out. Otherwise refresh (shared).
      if (!current.accessToken.equals(request.rejected)) {
        if (current.expiresAt > this.now()) return this.result(current);
      }
      return this.result(await this.refreshWithin(request, true));
    }
    if (!needsRefresh(this.now(), current.savedAt, current.expiresAt, this.deps.profile.refresh, request.minValidSeconds)) return this.result(current);
    // No refresh token (the provider issued none): the token is as good as it gets until it expires.
    if (!current.refreshToken && current.expiresAt > this.now()) return this.result(current);
    return this.result(await this.refreshWithin(request, false));
  }

  /**
   * Refreshes (or joins the refresh in flight), honouring the backoff: never more attempts than the
   * schedule allows, however many apps ask. Returns a still-valid token when the provider fails —
   * except the one an app reported rejected (`force`).
   */
  private async refreshWithin(request: TokenRequest, force: boolean): Promise<StoredTokens> {
    const deadline = this.now() + request.waitMs;
    const before = this.tokens;
    for (;;) {
      if (!this.tokens) return this.noSession();
      // A newer token arrived meanwhile (the timer's refresh, another app's): it is the answer.
      if (this.tokens !== before && this.tokens.expiresAt > this.now()) return this.tokens;
      let attempt: Promise<StoredTokens> | undefined = this.refreshing;
      if (!attempt && this.now() >= this.retryAt) attempt = this.refresh(force ? 'rejected by an API' : 'on demand');
      if (attempt) {
        try {
          return await raceDeadline(attempt, deadline, request.signal, this.now, () => this.unavailable());
        } catch (error) {
          if (!(error instanceof BrokerError)) throw error;
          // The refresh this app waited for ended the session: this app is the one asking for it back.
          if (error.code === 'LOGIN_REQUIRED' && !this.tokens) return this.noSession();
          if (error.code !== 'IDP_UNAVAILABLE') throw error;
          if (!force && this.tokens && this.tokens.expiresAt > this.now()) return this.tokens; // still valid: serve it
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
    const device = this.deps.profile.flow === 'device';
    if (this.stateValue === 'login-required' && this.policy.appAsked()) {
      const how = device
        ? `a device sign-in was started ("tokenbroker login --profile ${this.name}" shows its code)`
        : 'a browser window was opened to sign in again';
      throw new BrokerError('LOGIN_REQUIRED', `${this.name}: the session ended (${this.reason ?? 'signed out'}); ${how}`);
    }
    const pending = this.logins.pending;
    const hint =
      pending === undefined
        ? `run "tokenbroker login --profile ${this.name}"`
        : pending instanceof PendingLogin
          ? 'a sign-in is in progress in the browser'
          : `a device sign-in is in progress ("tokenbroker login --profile ${this.name}" shows its code)`;
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

  // ---- token.get {scopes, resource}: derived tokens --------------------------------------------

  /** Narrower tokens of this session, one per (scopes, resource); see derived-tokens.ts. */
  private readonly derived = new DerivedTokens();

  /**
   * A token for fewer scopes and/or named resources: from memory while it has enough left, else a
   * refresh of this key (shared by concurrent requests) through the session's one queue.
   */
  private async derivedToken(request: TokenRequest, current: StoredTokens): Promise<TokenResult> {
    const scopes = normalise(request.scopes);
    const resource = normalise(request.resource);
    if (scopes !== undefined) {
      // RFC 6749 §6: a refresh must not ask for a scope not originally granted. Granted: what the provider
      // said it granted, or what the sign-in asked for (some providers list only part of it, e.g. OIDC scopes).
      const granted = new Set([...current.scopes, ...this.deps.profile.scopes]);
      const missing = scopes.filter((scope) => !granted.has(scope));
      if (missing.length > 0) {
        throw new BrokerError(
          'SCOPE_NOT_GRANTED',
          `${this.name}: the session was not granted ${missing.map((m) => JSON.stringify(m)).join(', ')} (granted: ${[...granted].join(' ')}); add ${missing.length === 1 ? 'it' : 'them'} to the profile's "scopes" and sign in again`,
          { field: 'params.scopes' },
        );
      }
    }
    if (!current.refreshToken) {
      throw new BrokerError(
        'IDP_ERROR',
        `${this.name}: the provider issued no refresh token, so no token for other scopes or resources can be asked for (add "offline_access" to the profile's scopes)`,
      );
    }
    const entry = this.derived.entry(scopes, resource);
    const token = entry.token;
    const now = this.now();
    if (token !== undefined && token.expiresAt > now) {
      if (request.rejected !== undefined) {
        if (!token.accessToken.equals(request.rejected)) return this.derivedResult(token, resource);
      } else if (!needsRefresh(now, token.savedAt, token.expiresAt, this.deps.profile.refresh, request.minValidSeconds)) {
        return this.derivedResult(token, resource);
      }
    }
    return this.derivedResult(await this.refreshDerivedWithin(entry, request, request.rejected !== undefined), resource);
  }

  private derivedResult(token: DerivedToken, resource: readonly string[] | undefined): TokenResult {
    return {
      profile: this.name,
      accessToken: token.accessToken.reveal(),
      tokenType: token.tokenType,
      expiresAt: token.expiresAt,
      scopes: token.scopes,
      ...(resource === undefined ? {} : { resource }),
    };
  }

  /** refreshWithin for one derived key: single flight per key, its own backoff, a still-valid token when the provider fails. */
  private async refreshDerivedWithin(entry: DerivedEntry, request: TokenRequest, force: boolean): Promise<DerivedToken> {
    const deadline = this.now() + request.waitMs;
    const before = entry.token;
    const unavailable = () =>
      new BrokerError('IDP_UNAVAILABLE', `${this.name}: the provider is not answering; the broker tries again at ${new Date(entry.retryAt).toISOString()}`, {
        retryAt: Math.max(entry.retryAt, this.now()),
      });
    for (;;) {
      if (!this.tokens) return this.noSession();
      if (entry.token !== before && entry.token !== undefined && entry.token.expiresAt > this.now()) return entry.token;
      let attempt = entry.refreshing;
      if (!attempt && this.now() >= entry.retryAt) {
        attempt = entry.refreshing = this.queue
          .add(() => this.refreshDerivedNow(entry))
          .finally(() => {
            entry.refreshing = undefined;
          });
      }
      if (attempt) {
        try {
          return await raceDeadline(attempt, deadline, request.signal, this.now, unavailable);
        } catch (error) {
          if (!(error instanceof BrokerError)) throw error;
          if (error.code === 'LOGIN_REQUIRED' && !this.tokens) return this.noSession();
          if (error.code !== 'IDP_UNAVAILABLE') throw error;
          if (!force && entry.token !== undefined && entry.token.expiresAt > this.now()) return entry.token;
          if (this.now() >= deadline) throw error;
          continue;
        }
      }
      if (!force && entry.token !== undefined && entry.token.expiresAt > this.now()) return entry.token;
      if (entry.retryAt > deadline) throw unavailable();
      await sleepUntil(entry.retryAt, request.signal, this.now);
    }
  }

  /**
   * One refresh for a derived key, in the session's queue: it spends the session's refresh token like any
   * refresh, so a rotated one is kept first (keepRotatedRefreshToken) and the next refresh uses it.
   */
  private async refreshDerivedNow(entry: DerivedEntry): Promise<DerivedToken> {
    const tokens = this.tokens;
    if (!tokens) throw new BrokerError('LOGIN_REQUIRED', `${this.name}: not signed in`);
    if (!tokens.refreshToken) throw new BrokerError('IDP_ERROR', `${this.name}: the provider issued no refresh token`);
    const { log } = this.deps;
    try {
      const metadata = await this.deps.metadata();
      const { tokens: next, clockSkewMs } = await refreshGrant(
        this.tokenRequestDeps(),
        metadata,
        { ...tokens, refreshToken: tokens.refreshToken },
        { keepRotated: async (refreshToken) => void (await this.keepRotatedRefreshToken(refreshToken)) },
        { ...(entry.scopes === undefined ? {} : { scopes: entry.scopes }), ...(entry.resource === undefined ? {} : { resource: entry.resource }) },
      );
      this.noteClockSkew(clockSkewMs);
      entry.failures = 0;
      entry.retryAt = 0;
      entry.token = { accessToken: next.accessToken, tokenType: next.tokenType, expiresAt: next.expiresAt, scopes: next.scopes, savedAt: next.savedAt };
      log.info(
        { profile: this.name, scopes: entry.scopes, resource: entry.resource, expiresAt: new Date(next.expiresAt).toISOString() },
        'access token for narrower scopes or a resource obtained',
      );
      return entry.token;
    } catch (caught) {
      const error = caught instanceof UnverifiedRefresh ? caught.failure : caught;
      const failure = classifyRefreshFailure(error);
      if (failure.transient) {
        entry.failures++;
        entry.retryAt = nextAttemptAt(this.now(), entry.failures, this.deps.profile.refresh, failure.retryAfterMs);
        log.warn({ profile: this.name, resource: entry.resource, retryAt: new Date(entry.retryAt).toISOString() }, 'derived token refresh failed; will retry');
        throw new BrokerError(
          'IDP_UNAVAILABLE',
          `${this.name}: the provider is not answering; the broker tries again at ${new Date(entry.retryAt).toISOString()}`,
          {
            retryAt: entry.retryAt,
          },
        );
      }
      // The provider refused this narrower request (invalid_scope, invalid_target, …): its answer, passed on.
      // The refresh token itself still works (invalid_grant is not this case).
      if (error instanceof ProviderEndpointError && error.code !== 'LOGIN_REQUIRED') throw refusedNarrowing(this.name, error, entry);
      // The refresh token is dead (invalid_grant), or the answer's ID token failed its checks: the session ends.
      throw await this.refreshFailed(error);
    }
  }

  // ---- token.get {kind: "id"} ------------------------------------------------------------------

  /** Whether the last refresh answer carried an ID token (undefined: no refresh since the sign-in or restore). */
  private idTokenRenewedOnRefresh: boolean | undefined;

  /**
   * The session's ID token. When it has less left than asked (or has expired), one refresh is tried
   * (OIDC Core §12.2: its answer may carry a new ID token) unless the provider's last refresh answer
   * carried none, or the tokens were refreshed moments ago; still expired after that → ID_TOKEN_EXPIRED.
   */
  private async idTokenResult(request: TokenRequest): Promise<TokenResult> {
    let tokens = this.tokens!;
    let times = tokens.idToken === undefined ? undefined : idTokenTimes(tokens.idToken);
    const now = this.now();
    // An ID token an API refused (kubectl runs its plugin again after a 401) is stale too.
    const rejected = request.rejected !== undefined && tokens.idToken?.equals(request.rejected) === true;
    const stale = rejected || times === undefined || needsRefresh(now, times.issuedAt, times.expiresAt, this.deps.profile.refresh, request.minValidSeconds);
    const refreshedMomentsAgo = now - tokens.savedAt < minValidMarginMs(tokens.savedAt, tokens.expiresAt);
    if (stale && tokens.refreshToken && this.idTokenRenewedOnRefresh !== false && !refreshedMomentsAgo) {
      tokens = await this.refreshWithin(request, false);
      times = tokens.idToken === undefined ? undefined : idTokenTimes(tokens.idToken);
    }
    if (tokens.idToken === undefined || times === undefined || times.expiresAt <= this.now()) {
      throw new BrokerError(
        'ID_TOKEN_EXPIRED',
        `${this.name}: the ID token ${times === undefined ? 'is missing' : `expired at ${new Date(times.expiresAt).toISOString()}`} and the provider sent no new one on refresh; run "tokenbroker login --profile ${this.name}" for a new one`,
      );
    }
    return { profile: this.name, accessToken: tokens.idToken.reveal(), tokenType: 'Bearer', expiresAt: times.expiresAt, scopes: tokens.scopes, kind: 'id' };
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
    const { log } = this.deps;
    const problem = bindingProblem(tokens, this.deps.profile);
    if (problem) {
      // Never reached with tokens installed by restore or sign-in (both check); a guard, not a policy: no revocation.
      this.clearTokens();
      this.reason = problem;
      this.setState('login-required');
      throw new BrokerError('LOGIN_REQUIRED', `${this.name}: the stored tokens belong to another issuer or client (${problem}); sign-in required`);
    }
    this.setState('refreshing');
    log.debug({ profile: this.name, why }, 'refreshing the access token');
    try {
      const metadata = await this.deps.metadata();
      let kept: boolean | undefined;
      const {
        tokens: next,
        rotated,
        clockSkewMs,
      } = await refreshGrant(
        this.tokenRequestDeps(),
        metadata,
        { ...tokens, refreshToken: tokens.refreshToken },
        { keepRotated: async (refreshToken) => void (kept = await this.keepRotatedRefreshToken(refreshToken)) },
      );
      this.noteClockSkew(clockSkewMs);
      this.idTokenRenewedOnRefresh = next.idToken !== tokens.idToken;
      // The complete answer replaces the entry (the rotated refresh token is already in it, or its failure
      // was reported loudly once, by keepRotatedRefreshToken).
      if (kept === false ? await this.saveQuietly(next) : await this.persistRefreshed(next, false)) this.reason = undefined;
      this.failures = 0;
      this.retryAt = 0;
      this.lastRefresh = { at: this.now(), ok: true };
      this.install(next);
      this.deps.publish({ event: 'tokenRefreshed', data: { profile: this.name, expiresAt: next.expiresAt } });
      log.info({ profile: this.name, why, expiresAt: new Date(next.expiresAt).toISOString(), rotated }, 'access token refreshed');
      return next;
    } catch (error) {
      if (!(error instanceof UnverifiedRefresh)) throw await this.refreshFailed(error);
      if (error.failure instanceof ClockSkewError) this.noteClockSkew(error.failure.skewMs);
      log.warn(
        { profile: this.name },
        error.refreshToken === undefined
          ? 'refresh not completed (its ID token could not be checked yet); the access token in use stays'
          : 'refresh not completed (its ID token could not be checked yet); the rotated refresh token was kept for the next attempt',
      );
      throw await this.refreshFailed(error.failure);
    }
  }

  /**
   * The provider rotated the refresh token: the old one is spent, so the new one replaces it — in the
   * keychain first, before the answer is looked at any further (refreshGrant calls this). The access token
   * in use stays until the refresh completes. Updated in place: apps waiting for the refresh must not take
   * this for a newer access token.
   */
  private async keepRotatedRefreshToken(refreshToken: Secret): Promise<boolean> {
    const current = this.tokens;
    if (!current) return false;
    const saved = await this.persistRefreshed({ ...current, refreshToken }, true);
    current.refreshToken = refreshToken;
    if (saved) this.deps.log.debug({ profile: this.name }, 'rotated refresh token saved');
    return saved;
  }

  private async saveQuietly(next: StoredTokens): Promise<boolean> {
    try {
      await this.deps.store.save(this.name, next);
      return true;
    } catch {
      return false;
    }
  }

  /** The provider's clock minus ours, measured at its last token-endpoint answer (status shows it). */
  private clockSkewMs: number | undefined;

  private noteClockSkew(skewMs: number | undefined): void {
    if (skewMs === undefined) return;
    const before = this.clockSkewMs;
    this.clockSkewMs = skewMs;
    const far = Math.abs(skewMs) > CLOCK_SKEW_WARN_MS;
    if (far && (before === undefined || Math.abs(before - skewMs) > CLOCK_SKEW_WARN_MS)) {
      this.deps.log.warn({ profile: this.name, clockSkewSeconds: Math.round(skewMs / 1000) }, `${describeClockSkew(skewMs)}: set the clock right (enable NTP)`);
    }
  }

  /**
   * The new tokens reach the keychain before anyone gets the new access token. With rotation, the new
   * refresh token is the only one that works from now on: failing to store it is loud.
   */
  private async persistRefreshed(next: StoredTokens, rotated: boolean): Promise<boolean> {
    try {
      await this.deps.store.save(this.name, next);
      return true;
    } catch (error) {
      if (rotated) {
        this.deps.log.error(
          { profile: this.name, err: { message: (error as Error).message } },
          'ROTATED REFRESH TOKEN NOT SAVED: the keychain refused it; the session works until the daemon stops, then needs a new sign-in',
        );
        this.reason = 'keychain_write_failed';
      } else {
        this.deps.log.warn(
          { profile: this.name, err: { message: (error as Error).message } },
          'could not save refreshed tokens (the stored refresh token still works)',
        );
      }
      return false;
    }
  }

  private async refreshFailed(error: unknown): Promise<BrokerError> {
    const { log, profile } = this.deps;
    const failure = classifyRefreshFailure(error);
    const message = error instanceof Error ? error.message : String(error);
    if (failure.transient) {
      this.failures++;
      this.retryAt = nextAttemptAt(this.now(), this.failures, profile.refresh, failure.retryAfterMs);
      this.lastRefresh = { at: this.now(), ok: false, code: failure.code };
      this.setState('active');
      this.arm();
      const level = failure.code === 'INTERNAL' ? 'error' : 'warn';
      log[level](
        { profile: this.name, failures: this.failures, retryAt: new Date(this.retryAt).toISOString(), err: { message } },
        'refresh failed; will retry',
      );
      this.deps.publish({ event: 'refreshFailed', data: { profile: this.name, code: failure.code, retryAt: this.retryAt } });
      return this.unavailable();
    }
    this.lastRefresh = { at: this.now(), ok: false, code: failure.code };
    log.warn({ profile: this.name, reason: failure.reason, err: { message } }, 'refresh failed permanently; sign-in required');
    this.deps.publish({ event: 'refreshFailed', data: { profile: this.name, code: 'LOGIN_REQUIRED' } });
    await this.requireLogin(failure.reason);
    return new BrokerError('LOGIN_REQUIRED', `${this.name}: the provider refused the refresh (${failure.reason}); sign-in required`);
  }

  /** A permanent failure: drop the tokens, tell the apps, and apply the profile's policy (failure-policy.ts). */
  private async requireLogin(reason: string): Promise<void> {
    const ended = this.tokens;
    this.clearTokens();
    this.reason = reason;
    this.policy.sessionEnded(ended); // first: an app reacting to the events below finds the policy in place
    this.setState('login-required');
    try {
      await this.deps.store.delete(this.name);
    } catch (error) {
      this.deps.log.warn({ profile: this.name, err: { message: (error as Error).message } }, 'could not delete the dead tokens from the keychain');
    }
    this.deps.publish({ event: 'loginRequired', data: { profile: this.name, reason } });
    await this.policy.followUp();
  }

  private async endProviderSession(ended: StoredTokens, options: { readonly showLogoutPage: boolean; readonly revoke: boolean }): Promise<void> {
    try {
      await logout({ ...this.logoutDeps(), tokens: ended, ...options });
    } catch (error) {
      this.deps.log.warn({ profile: this.name, err: { message: (error as Error).message } }, 'provider logout after a failed refresh did not complete');
    }
  }

  // ---- timers ----------------------------------------------------------------------------------

  /** Arms the refresh timer: ahead of expiry, or at the next backoff slot after failures. */
  private arm(): void {
    if (this.retired) return this.timer.clear();
    const tokens = this.tokens;
    if (!tokens?.refreshToken) return this.timer.clear();
    this.timer.set(this.failures > 0 ? this.retryAt : plannedRefreshAt(tokens.savedAt, tokens.expiresAt, this.deps.profile.refresh));
  }

  /**
   * The wall clock jumped by `driftMs` (the machine slept, or the clock was set): timers fired late or
   * not at all. Refresh at once if the token is due; otherwise re-arm against the new time. A clock set
   * back leaves the tokens' real remaining life unchanged, so their times move back with it.
   */
  onClockJump(driftMs = 0): void {
    if (!this.tokens) return;
    if (driftMs < 0) {
      this.tokens = { ...this.tokens, expiresAt: this.tokens.expiresAt + driftMs, savedAt: this.tokens.savedAt + driftMs };
      if (this.retryAt > 0) this.retryAt = Math.max(0, this.retryAt + driftMs);
    }
    const due = this.timer.at === undefined || this.timer.at <= this.now();
    if (this.tokens.refreshToken && due && this.now() >= this.retryAt) {
      this.refresh('clock jump').catch(() => {
        /* recorded in status and events; the next attempt is armed */
      });
    } else this.arm();
  }

  // ---- login -----------------------------------------------------------------------------------

  /** Starts a sign-in (browser, or device per `options.device` or the profile's flow), or joins the one under way; see login-slot.ts. */
  startSignIn(options: LoginStartOptions): Promise<LoginStart> {
    return this.logins.start(options);
  }

  /** Starts a browser login, or joins the one under way; LOGIN_IN_PROGRESS when that is a device sign-in. */
  async startLogin(options: LoginStartOptions): Promise<{ readonly login: PendingLogin; readonly joined: boolean }> {
    const { login, joined } = await this.logins.start(options);
    if (!(login instanceof PendingLogin)) {
      throw new BrokerError('LOGIN_IN_PROGRESS', `${this.name}: a device sign-in is under way; enter its code (tokenbroker login shows it) or cancel it`);
    }
    return { login, joined };
  }

  cancelLogin(): boolean {
    return this.logins.cancel(new BrokerError('LOGIN_CANCELLED', `${this.name}: the sign-in was cancelled`));
  }

  /**
   * The redirect for this session's pending login arrived (custom scheme or loopback). `fromUser`: it
   * was delivered by the user's own side (our socket, or a loopback caller whose uid was checked).
   *
   * Refused before anything is consumed — the sign-in goes on: a wrong state or `iss`, a missing code,
   * repeated parameters, and the provider's `error=` unless the user's side delivered it (then it is
   * the user saying no, and the sign-in ends). Otherwise the state is single-use: the pending login is
   * taken before the exchange, so a replay finds nothing, and a failed exchange ends it.
   */
  async completeLogin(login: PendingLogin, url: string, fromUser: boolean): Promise<LoginOutcome> {
    let code: Secret;
    try {
      code = checkLoginRedirect(login, url);
    } catch (error) {
      if (error instanceof AuthorizationResponseError && fromUser && this.logins.pending === login) this.logins.end(login, error);
      throw error;
    }
    if (this.logins.pending !== login)
      throw new BrokerError('LOGIN_FAILED', 'unknown or already used state: this sign-in timed out, was cancelled, or the redirect was replayed');
    this.logins.take(login);
    try {
      const outcome = await this.queue.add(() => this.exchange(login, code));
      login.succeed(outcome);
      return outcome;
    } catch (error) {
      const failure = error instanceof BrokerError ? error : new BrokerError('LOGIN_FAILED', `${this.name}: the sign-in failed unexpectedly`);
      if (!(error instanceof BrokerError)) this.deps.log.error({ err: error }, 'unexpected error completing a login');
      this.logins.end(login, failure);
      throw failure;
    }
  }

  /**
   * The user approved a device sign-in (RFC 8628 §3.5): the tokens are checked, stored and installed
   * exactly as after a browser sign-in (signedIn), in the session's queue.
   */
  private async completeDeviceLogin(login: DeviceLogin, tokens: DeviceTokens): Promise<void> {
    if (this.logins.pending !== login) return; // cancelled or replaced meanwhile
    this.logins.take(login);
    try {
      login.succeed(await this.queue.add(async () => this.signedIn(await deviceCodeGrant(this.tokenRequestDeps(), login.metadata, tokens))));
    } catch (error) {
      const failure = error instanceof BrokerError ? error : new BrokerError('LOGIN_FAILED', `${this.name}: the sign-in failed unexpectedly`);
      if (!(error instanceof BrokerError)) this.deps.log.error({ err: error }, 'unexpected error completing a device sign-in');
      this.logins.end(login, failure);
    }
  }

  private async exchange(login: PendingLogin, code: Secret): Promise<LoginOutcome> {
    return this.signedIn(await authorizationCodeGrant(this.tokenRequestDeps(), login, code));
  }

  /** A sign-in's validated tokens: keychain first, then the session is live and the apps are told. */
  private async signedIn(tokens: StoredTokens): Promise<LoginOutcome> {
    const subject = tokens.subject!;
    // Keychain first: a login whose tokens cannot be kept fails, and the previous session stays.
    await this.deps.store.save(this.name, tokens);
    this.failures = 0;
    this.retryAt = 0;
    this.reason = undefined;
    this.policy.reset();
    const previousSubject = this.lastSubject;
    // Tokens derived from the previous sign-in's grant are not this one's.
    this.derived.clear();
    this.idTokenRenewedOnRefresh = undefined;
    this.install(tokens);
    this.deps.publish({ event: 'loggedIn', data: { profile: this.name, subject, expiresAt: tokens.expiresAt } });
    this.deps.log.info({ profile: this.name, subject, refreshToken: tokens.refreshToken !== undefined }, 'signed in');
    // An account switch is never silent: logged, published, and shown in status.
    if (previousSubject !== undefined && previousSubject !== subject) {
      this.accountChange = { previousSubject, at: this.now() };
      this.deps.log.warn({ profile: this.name, previousSubject, subject }, 'signed in to a different account than the previous session');
      this.deps.publish({ event: 'accountChanged', data: { profile: this.name, previousSubject, subject, at: this.accountChange.at } });
    }
    return {
      subject,
      ...(tokens.email === undefined ? {} : { email: tokens.email }),
      ...(tokens.username === undefined ? {} : { username: tokens.username }),
      expiresAt: tokens.expiresAt,
      ...(previousSubject !== undefined && previousSubject !== subject ? { previousSubject } : {}),
    };
  }

  // ---- logout ----------------------------------------------------------------------------------

  /** The provider's logout flow, in the guide's order; see logout.ts. */
  async logout(openBrowser: boolean): Promise<LogoutOutcome> {
    return this.queue.add(async () => {
      this.logins.cancel(new BrokerError('LOGIN_CANCELLED', `${this.name}: signed out`));
      const stored = this.tokens ?? (await this.deps.store.load(this.name));
      // Tokens of another issuer or client are not revoked at this one's endpoint (binding.ts).
      const tokens = stored && bindingProblem(stored, this.deps.profile) === undefined ? stored : undefined;
      const outcome = await logout({ ...this.logoutDeps(), tokens, showLogoutPage: openBrowser, revoke: true });
      this.clearTokens();
      this.reason = undefined;
      this.policy.reset();
      this.failures = 0;
      this.retryAt = 0;
      this.setState('logged-out');
      this.deps.publish({ event: 'loggedOut', data: { profile: this.name } });
      return outcome;
    });
  }

  private tokenRequestDeps(): TokenRequestDeps {
    return { profile: this.deps.profile, http: this.deps.http, now: this.now, log: this.deps.log };
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
      ...(this.deps.revocations === undefined ? {} : { revocations: this.deps.revocations }),
    };
  }

  // ---- internals -------------------------------------------------------------------------------

  private install(tokens: StoredTokens): void {
    this.tokens = tokens;
    if (tokens.subject !== undefined) this.lastSubject = tokens.subject;
    this.setState('active');
    this.arm();
  }

  private clearTokens(): void {
    this.tokens = undefined;
    this.derived.clear();
    this.idTokenRenewedOnRefresh = undefined;
    this.timer.clear();
  }

  private setState(next: ProfileState): void {
    const previous = this.stateValue;
    if (previous === next) return;
    this.stateValue = next;
    this.deps.log.debug({ profile: this.name, from: previous, to: next }, 'state');
    this.deps.publish({ event: 'stateChanged', data: { profile: this.name, state: next, previous } });
  }

  // ---- config reload ---------------------------------------------------------------------------

  /**
   * The profile's settings changed, its issuer and client id did not (the Broker checks): the session
   * stays, the new settings apply from now on (the refresh timer is re-armed with the new timings; a
   * sign-in under way finishes with the settings it started with).
   */
  /** Retired by a reload: no timer is armed again (a refresh in flight still ends, unseen). */
  private retired = false;

  reconfigure(update: Pick<SessionDeps, 'profile' | 'isDefault' | 'http' | 'metadata'>): void {
    if (update.profile.issuer !== this.deps.profile.issuer || update.profile.clientId !== this.deps.profile.clientId) {
      throw new TypeError(`${this.name}: reconfigure cannot change the issuer or client id (the session must start over)`);
    }
    this.deps = { ...this.deps, ...update };
    if (this.tokens && this.stateValue === 'active') this.arm();
  }

  /**
   * The profile left the config (or changed issuer or client id): signed out in memory only. The keychain
   * entry stays; a sign-in under way is cancelled, timers stop. Resolves once the session's queue is idle
   * (a refresh in flight has saved its tokens), so a successor reads the keychain after it.
   */
  retire(why: string): Promise<void> {
    this.retired = true;
    this.logins.cancel(new BrokerError('LOGIN_CANCELLED', `${this.name}: ${why}`));
    this.clearTokens();
    this.dispose();
    return this.queue.onIdle();
  }

  /** Stops timers (daemon shutdown). */
  dispose(): void {
    this.timer.clear();
    this.logins.dispose();
  }
}

/** The provider refused a narrower refresh (RFC 6749 §5.2 `invalid_scope`, RFC 8707 §2 `invalid_target`, …). */
function refusedNarrowing(profile: string, error: ProviderEndpointError, entry: DerivedEntry): BrokerError {
  const what = error.oauthError ?? `HTTP ${error.status ?? '?'}`;
  const description = error.oauthErrorDescription === undefined ? '' : `: ${error.oauthErrorDescription}`;
  const field = error.oauthError === 'invalid_target' || (entry.scopes === undefined && entry.resource !== undefined) ? 'params.resource' : 'params.scopes';
  return new BrokerError('IDP_ERROR', `${profile}: the provider refused a token for ${describeKey(entry)} (${what}${description})`, { field });
}

function describeKey(entry: DerivedEntry): string {
  const parts = [
    ...(entry.scopes === undefined ? [] : [`scopes "${entry.scopes.join(' ')}"`]),
    ...(entry.resource === undefined ? [] : [`resource ${entry.resource.join(', ')}`]),
  ];
  return parts.join(' and ');
}
