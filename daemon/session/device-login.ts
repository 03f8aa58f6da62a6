/**
 * One pending device sign-in of a profile (RFC 8628): the user code and where to enter it, the polling
 * of the token endpoint, and the apps waiting for it. It sits in the same login slot as a browser
 * sign-in (login-slot.ts), so apps see it the same way: state `logging-in`, the same events, the same
 * `login` waits. Its life is the device code's (`expires_in`), not `loginTimeoutSeconds`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { BrokerError, type DeviceLoginInfo } from '../../proto/index.js';
import type { ProfileConfig } from '../config.js';
import type { Logger } from '../log.js';
import {
  exchangeDeviceCode,
  pollDeviceTokens,
  requestDeviceAuthorization,
  type DeviceAuthorization,
  type HttpClient,
  type ProviderMetadata,
  type TokenSet,
} from '../oauth/index.js';
import type { LoginOutcome } from './login-flow.js';
import { waitForSignIn } from './wait.js';

/** The provider's answer to the poll that ended the sign-in, with the times that anchor its expiry. */
export interface DeviceTokens {
  readonly set: TokenSet;
  readonly sentAt: number;
  readonly receivedAt: number;
}

export interface DeviceLoginOptions {
  readonly profile: ProfileConfig;
  readonly metadata: ProviderMetadata;
  readonly http: HttpClient;
  readonly log: Logger;
  readonly now: () => number;
  /** The user approved: validate, store and install the tokens (the session does), and say who signed in. */
  readonly onTokens: (login: DeviceLogin, tokens: DeviceTokens) => Promise<void>;
  /** The polling ended without tokens (expired, denied, refused). */
  readonly onFailed: (login: DeviceLogin, error: BrokerError) => void;
  /** Waits between polls (tests pass a fake clock's). @default node:timers/promises setTimeout */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

const realSleep = (ms: number, signal: AbortSignal): Promise<void> => sleep(ms, undefined, { signal });

export class DeviceLogin {
  readonly startedAt: number;
  readonly outcome: Promise<LoginOutcome>;
  private resolveOutcome!: (outcome: LoginOutcome) => void;
  private rejectOutcome!: (error: BrokerError) => void;
  private readonly stop = new AbortController();
  private settled = false;

  private constructor(
    private readonly authorization: DeviceAuthorization,
    readonly metadata: ProviderMetadata,
    private readonly options: DeviceLoginOptions,
  ) {
    this.startedAt = options.now();
    this.outcome = new Promise<LoginOutcome>((resolve, reject) => {
      this.resolveOutcome = resolve;
      this.rejectOutcome = reject;
    });
    this.outcome.catch(() => {}); // waiters attach their own handlers; an unobserved failure is fine
  }

  /** RFC 8628 §3.1: asks for a user code, then polls in the background (§3.4). */
  static async start(options: DeviceLoginOptions): Promise<DeviceLogin> {
    const { profile, metadata, http, now } = options;
    const authorization = await requestDeviceAuthorization({
      http,
      metadata,
      clientId: profile.clientId,
      scopes: profile.scopes,
      now,
    }).catch((error: unknown) => {
      if (!(error instanceof BrokerError) || error.code === 'IDP_UNAVAILABLE') throw error;
      throw new BrokerError('LOGIN_FAILED', `${profile.name}: the provider did not start a device sign-in: ${error.message}`);
    });
    const login = new DeviceLogin(authorization, metadata, options);
    void login.poll();
    return login;
  }

  /** What the user needs: the code and where to enter it. The device code itself never leaves the daemon. */
  get device(): DeviceLoginInfo {
    const a = this.authorization;
    return {
      userCode: a.userCode,
      verificationUri: a.verificationUri,
      ...(a.verificationUriComplete === undefined ? {} : { verificationUriComplete: a.verificationUriComplete }),
      expiresAt: a.expiresAt,
      intervalSeconds: a.intervalSeconds,
    };
  }

  /** The sign-in ends with the device code. */
  get timesOutAt(): number {
    return this.authorization.expiresAt;
  }

  /** Where a user is sent: the complete URI when the provider gave one. */
  get url(): string {
    return this.authorization.verificationUriComplete ?? this.authorization.verificationUri;
  }

  private async poll(): Promise<void> {
    const { profile, metadata, http, now, log } = this.options;
    let tokens: DeviceTokens;
    try {
      let sentAt = now();
      const set = await pollDeviceTokens({
        authorization: this.authorization,
        now,
        sleep: this.options.sleep ?? realSleep,
        signal: this.stop.signal,
        exchange: () => {
          sentAt = now();
          return exchangeDeviceCode({
            http,
            metadata,
            clientId: profile.clientId,
            deviceCode: this.authorization.deviceCode,
            requestedScopes: profile.scopes,
            now,
          });
        },
        onPoll: (state, nextPollInMs) => log.debug({ profile: profile.name, state, nextPollInMs }, 'device sign-in not confirmed yet'),
      });
      tokens = { set, sentAt, receivedAt: now() };
    } catch (error) {
      if (this.settled) return; // cancelled, replaced or shut down: the abort ended the wait
      const failure =
        error instanceof BrokerError
          ? new BrokerError(error.code, `${profile.name}: ${error.message}`)
          : new BrokerError('LOGIN_FAILED', `${profile.name}: the device sign-in failed unexpectedly`);
      if (!(error instanceof BrokerError)) log.error({ err: error }, 'unexpected error polling for a device sign-in');
      this.options.onFailed(this, failure);
      return;
    }
    if (this.settled) return;
    await this.options.onTokens(this, tokens);
  }

  succeed(outcome: LoginOutcome): void {
    if (this.finish()) this.resolveOutcome(outcome);
  }

  fail(error: BrokerError): void {
    if (this.finish()) this.rejectOutcome(error);
  }

  /** Ends the sign-in from outside (expiry, cancel, logout, shutdown): the polling stops. */
  abandon(error: BrokerError): void {
    this.fail(error);
  }

  /** Waits for the outcome, or until `signal` fires (the waiter leaves; the sign-in goes on for others). */
  wait(signal: AbortSignal): Promise<LoginOutcome> {
    return waitForSignIn(this.outcome, signal);
  }

  private finish(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.stop.abort();
    return true;
  }
}
