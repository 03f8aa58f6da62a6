/**
 * Every message of protocol version 1. See proto/README.md for the wire format.
 *
 * A request is `{ id, method, params }`; its answer is `{ id, result }` or `{ id, error }` with the same id.
 * An event is `{ event, data }` and carries no id.
 */
import type { WireError } from './errors.js';

/** Request ids are chosen by the client: a string (≤ 64 chars) or a non-negative safe integer. */
export type RequestId = string | number;

/** `restoring`: the daemon is still reading the profile's keychain entry after it started. */
export const PROFILE_STATES = ['restoring', 'logged-out', 'logging-in', 'active', 'refreshing', 'login-required'] as const;
export type ProfileState = (typeof PROFILE_STATES)[number];

// ---- hello -------------------------------------------------------------------------------------

export interface HelloParams {
  /** The protocol major version the client speaks. */
  readonly protocolVersion: number;
  /** A short name for logs and `status`, e.g. "my-editor/1.2". */
  readonly client?: string;
}

export interface HelloResult {
  readonly protocolVersion: number;
  readonly daemonVersion: string;
  /** The methods this daemon answers. */
  readonly methods: readonly MethodName[];
}

// ---- status ------------------------------------------------------------------------------------

/**
 * `status` answers in pages, so that any number of profiles fits the 64 KiB frame: a page holds at most
 * `limit` profiles and at most STATUS_PAGE_BYTES of profile JSON; `nextOffset` says where the next page
 * starts. A plain `status {}` is the first page.
 */
export interface StatusParams {
  /** Only this profile (PROFILE_NOT_FOUND when there is none). */
  readonly profile?: string;
  /** Index (in config order) of the first profile of the page. @default 0 */
  readonly offset?: number;
  /** At most this many profiles in the page (1–1000); a page also stops at STATUS_PAGE_BYTES. @default 1000 */
  readonly limit?: number;
}

export interface LastRefresh {
  readonly at: number;
  readonly ok: boolean;
  /** Error code when `ok` is false. */
  readonly code?: string;
}

/** What `status` tells about one profile. Never a token. */
export interface ProfileStatus {
  readonly name: string;
  readonly isDefault: boolean;
  readonly state: ProfileState;
  /** "oidc" (issuer + discovery) or "wristband" (preset). */
  readonly provider: string;
  readonly issuer: string;
  /** From the validated ID token. */
  readonly subject?: string;
  readonly email?: string;
  /** `preferred_username` (OIDC Core §5.1), from the ID token or the UserInfo endpoint. */
  readonly username?: string;
  readonly scopes?: readonly string[];
  /** Access-token expiry, epoch ms. */
  readonly expiresAt?: number;
  /** When the refresh timer fires next, epoch ms. */
  readonly nextRefreshAt?: number;
  readonly lastRefresh?: LastRefresh;
  readonly consecutiveFailures?: number;
  /** What a permanent refresh failure leads to: "relogin" or "logout". */
  readonly onRefreshFailure?: string;
  /** For a pending login: when it started (epoch ms). */
  readonly loginStartedAt?: number;
  /** Why the profile is in `login-required`, e.g. "invalid_grant". */
  readonly reason?: string;
  /**
   * The last account switch (since the daemon started): a sign-in named another subject than the
   * profile's previous session, which was `previousSubject`; when (epoch ms).
   */
  readonly previousSubject?: string;
  readonly accountChangedAt?: number;
  /**
   * The provider's clock minus this machine's, in seconds (±0.5 s: the `Date` header has whole seconds),
   * measured at the last token-endpoint answer of a refresh. Positive: this machine is behind.
   */
  readonly clockSkewSeconds?: number;
}

export interface StatusResult {
  readonly daemonVersion: string;
  readonly protocolVersion: number;
  readonly pid: number;
  readonly startedAt: number;
  readonly uptimeSeconds: number;
  readonly socketPath: string;
  readonly configPath: string | null;
  readonly connectedClients: number;
  /** This page's profiles, in config order (all of them when `nextOffset` is absent and `offset` was 0). */
  readonly profiles: readonly ProfileStatus[];
  /** How many profiles are configured. (Absent from daemons before paging.) */
  readonly totalProfiles?: number;
  /** Present when more profiles follow: ask again with `offset: nextOffset`. */
  readonly nextOffset?: number;
  /**
   * The last reload of the config file failed (the daemon runs on with the config it had): why. Absent
   * once a reload succeeds. (Absent from daemons before live reload.)
   */
  readonly configError?: ConfigError;
}

/** A config file the daemon could not take (see `reload`). */
export interface ConfigError {
  readonly path: string;
  /** What is wrong, naming the field. */
  readonly message: string;
  /** The field at fault, when one is (`profiles.acme.issuer`). */
  readonly field?: string;
  /** When the reload failed, epoch ms. */
  readonly at: number;
}

// ---- reload ------------------------------------------------------------------------------------

export type ReloadParams = Record<string, never>;

/**
 * What a reload changed. A broken file is answered with CONFIG_INVALID instead (the running config stays,
 * and `status` shows `configError`).
 */
export interface ReloadResult {
  readonly configPath: string | null;
  /** New profiles (state `logged-out`, or their session restored from the keychain). */
  readonly added: readonly string[];
  /** Profiles gone from the file: signed out in memory; their keychain entry is kept. */
  readonly removed: readonly string[];
  /** Changed profiles whose issuer and client id stayed: the session is kept, the new settings apply. */
  readonly changed: readonly string[];
  /** Changed profiles with another issuer or client id: they start over (a new sign-in). */
  readonly restarted: readonly string[];
  /** The default profile now (absent when there is none). */
  readonly defaultProfile?: string;
}

// ---- subscribe / unsubscribe ------------------------------------------------------------------

export const EVENT_NAMES = [
  'stateChanged',
  'loggedIn',
  'loggedOut',
  'tokenRefreshed',
  'refreshFailed',
  'loginRequired',
  'loginFailed',
  'accountChanged',
  'profileAdded',
  'profileRemoved',
  'profileChanged',
] as const;
export type EventName = (typeof EVENT_NAMES)[number];

export interface SubscribeParams {
  /** Which events to receive; all of them when absent. */
  readonly events?: readonly EventName[];
}

export interface SubscribeResult {
  readonly events: readonly EventName[];
}

export type UnsubscribeParams = Record<string, never>;
export type UnsubscribeResult = Record<string, never>;

// ---- token.get ---------------------------------------------------------------------------------

export interface TokenGetParams {
  /** @default the default profile */
  readonly profile?: string;
  /** Refresh first when the token has less than this left. @default the profile's refresh.minValidSeconds (30) */
  readonly minValidSeconds?: number;
  /** How long the daemon may wait for a refresh before answering IDP_UNAVAILABLE. @default 10000 */
  readonly waitMs?: number;
  /**
   * An access token the app's API rejected (HTTP 401). When it is still the broker's current token the
   * broker refreshes (once, however many apps report it); when a newer one exists it is returned at once.
   */
  readonly rejected?: string;
  /**
   * A token for fewer scopes than the session was granted (RFC 6749 §6: a refresh with a narrower
   * `scope`). Each must be granted already (else SCOPE_NOT_GRANTED, without asking the provider).
   * Absent: the session's own token, for every granted scope.
   */
  readonly scopes?: readonly string[];
  /**
   * The resource servers (APIs) the token is for: RFC 8707 resource indicators, absolute URIs; sent as
   * `resource` (or the profile's `audienceParam`). Each distinct (`scopes`, `resource`) is a token of its own.
   */
  readonly resource?: readonly string[];
  /** `"id"`: the session's OpenID Connect ID token instead of an access token (see TOKEN_KINDS). @default "access" */
  readonly kind?: TokenKind;
}

/** What `token.get` hands out: an access token (the default) or the ID token of the sign-in. */
export const TOKEN_KINDS = ['access', 'id'] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];

export interface TokenResult {
  readonly profile: string;
  readonly accessToken: string;
  readonly tokenType: string;
  /** Epoch ms. */
  readonly expiresAt: number;
  readonly scopes: readonly string[];
  /** Only for `kind: "id"`: `accessToken` then holds the ID token (as RFC 8693 §2.2.1 names any issued token). */
  readonly kind?: 'id';
  /** The resource indicators the token was asked for, when the request named some. */
  readonly resource?: readonly string[];
}

// ---- login / login.cancel / logout / callback --------------------------------------------------

export interface LoginParams {
  readonly profile?: string;
  /** Resolve when the login completes (true) or as soon as it is under way, with its URL (false). @default false */
  readonly wait?: boolean;
  /** Open the system browser. @default true */
  readonly openBrowser?: boolean;
  /**
   * Sign in with a code entered on another device (RFC 8628 device authorization grant), whatever the
   * profile's `flow`. Joins a device sign-in under way; takes over a browser sign-in under way (its
   * waiters get this one's outcome). @default false (the profile's `flow` decides)
   */
  readonly device?: boolean;
}

/** A device sign-in under way (RFC 8628 §3.2–3.3): what the user enters, and where. */
export interface DeviceLoginInfo {
  /** The code the user types at `verificationUri`. */
  readonly userCode: string;
  readonly verificationUri: string;
  /** `verificationUri` with the code in it, when the provider gave one (for a link or a QR code). */
  readonly verificationUriComplete?: string;
  /** When the code expires (epoch ms); the sign-in ends then. */
  readonly expiresAt: number;
  /** How often the daemon asks the provider whether the user has confirmed (seconds). */
  readonly intervalSeconds: number;
}

export interface LoginResult {
  readonly profile: string;
  readonly state: ProfileState;
  /** While pending: the URL to open if the browser did not come up. */
  readonly authorizationUrl?: string;
  readonly startedAt?: number;
  /** While pending: when it times out (epoch ms). */
  readonly timesOutAt?: number;
  /** This request joined a login that was already under way. */
  readonly joined?: boolean;
  /** While pending, for a device sign-in: the code and where to enter it (`authorizationUrl` is then that URL). */
  readonly device?: DeviceLoginInfo;
  /** While pending, for a browser sign-in: the provider also supports device sign-in (`login` with `device: true`). */
  readonly deviceFlowAvailable?: boolean;
  /** Once complete: */
  readonly subject?: string;
  readonly email?: string;
  /** `preferred_username` (OIDC Core §5.1), from the ID token or the UserInfo endpoint. */
  readonly username?: string;
  readonly expiresAt?: number;
  /** Once complete, when the sign-in named another subject than the profile's previous session. */
  readonly previousSubject?: string;
}

export interface LoginCancelParams {
  readonly profile?: string;
}

export interface LoginCancelResult {
  readonly profile: string;
  readonly cancelled: boolean;
}

export interface LogoutParams {
  readonly profile?: string;
  /** Send the browser to the provider's logout page. @default true */
  readonly openBrowser?: boolean;
}

export interface LogoutResult {
  readonly profile: string;
  /** The tokens were removed from the keychain (false when there were none). */
  readonly keychainCleared: boolean;
  /** The refresh token was revoked at the provider (RFC 7009). */
  readonly revoked: boolean;
  /** Why revocation did not happen, when it did not. */
  readonly revokeError?: string;
  /** The provider's logout page, when it has one. */
  readonly logoutUrl?: string;
}

export interface CallbackParams {
  /** The redirect URL the OS handed to `tokenbroker callback`. */
  readonly url: string;
}

export interface CallbackResult {
  readonly profile: string;
  /** What the redirect completed. */
  readonly kind: 'login' | 'logout';
  readonly message: string;
}

// ---- events ------------------------------------------------------------------------------------

export interface EventPayloads {
  stateChanged: { readonly profile: string; readonly state: ProfileState; readonly previous: ProfileState };
  loggedIn: { readonly profile: string; readonly subject?: string; readonly expiresAt: number };
  loggedOut: { readonly profile: string };
  tokenRefreshed: { readonly profile: string; readonly expiresAt: number };
  refreshFailed: { readonly profile: string; readonly code: string; readonly retryAt?: number };
  loginRequired: { readonly profile: string; readonly reason: string };
  loginFailed: { readonly profile: string; readonly code: string; readonly message: string };
  /** A sign-in completed as another subject than the profile's previous session. */
  accountChanged: { readonly profile: string; readonly previousSubject: string; readonly subject: string; readonly at: number };
  /** A reload of the config added this profile. */
  profileAdded: { readonly profile: string };
  /** A reload of the config removed this profile (signed out in memory; the keychain entry is kept). */
  profileRemoved: { readonly profile: string };
  /** A reload changed this profile's settings; `sessionKept` is false when its issuer or client id changed (it starts over). */
  profileChanged: { readonly profile: string; readonly sessionKept: boolean };
}

export type BrokerEvent = { [K in EventName]: { readonly event: K; readonly data: EventPayloads[K] } }[EventName];

// ---- the method table --------------------------------------------------------------------------

export interface Methods {
  hello: { params: HelloParams; result: HelloResult };
  status: { params: StatusParams; result: StatusResult };
  subscribe: { params: SubscribeParams; result: SubscribeResult };
  unsubscribe: { params: UnsubscribeParams; result: UnsubscribeResult };
  'token.get': { params: TokenGetParams; result: TokenResult };
  login: { params: LoginParams; result: LoginResult };
  'login.cancel': { params: LoginCancelParams; result: LoginCancelResult };
  logout: { params: LogoutParams; result: LogoutResult };
  callback: { params: CallbackParams; result: CallbackResult };
  reload: { params: ReloadParams; result: ReloadResult };
}

export type MethodName = keyof Methods;
export type ParamsOf<M extends MethodName> = Methods[M]['params'];
export type ResultOf<M extends MethodName> = Methods[M]['result'];

// ---- envelopes ---------------------------------------------------------------------------------

export type Request = { [M in MethodName]: { readonly id: RequestId; readonly method: M; readonly params: ParamsOf<M> } }[MethodName];

export type Response = { readonly id: RequestId; readonly result: unknown } | { readonly id: RequestId | null; readonly error: WireError };
