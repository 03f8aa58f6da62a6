/**
 * One error model for the wire and the client library. A `code` is stable and documented in
 * proto/README.md; the message is for people and may change.
 */
export const ERROR_CODES = [
  /** The request is malformed; `field` names the offending field. */
  'BAD_REQUEST',
  /** `hello` asked for a protocol major version this daemon does not speak. */
  'UNSUPPORTED_PROTOCOL',
  /** More than the allowed number of requests are in flight on this connection. */
  'TOO_MANY_REQUESTS',
  /** The daemon is stopping and takes no new requests. */
  'SHUTTING_DOWN',
  /**
   * The daemon is at its connection limit: this connection was refused (none idle to make room), or it was
   * an idle one closed to make room for a newcomer. Sent with `id: null` just before the daemon closes it.
   */
  'SERVER_BUSY',
  /** No profile by that name, or no profile configured and none named. */
  'PROFILE_NOT_FOUND',
  /** The profile has no session; the user must sign in. */
  'LOGIN_REQUIRED',
  /** A login is already in progress elsewhere and this request cannot join it. */
  'LOGIN_IN_PROGRESS',
  /** The login failed: the provider returned an error, the state was unknown, a check failed. */
  'LOGIN_FAILED',
  /** The user or the daemon cancelled the login. */
  'LOGIN_CANCELLED',
  /** The login was not completed in time. */
  'LOGIN_TIMEOUT',
  /**
   * `token.get` asked for a scope the session was never granted (nor asked for at sign-in): the provider
   * was not asked (RFC 6749 §6 forbids a refresh to widen the scope). Sign in with that scope instead.
   */
  'SCOPE_NOT_GRANTED',
  /**
   * `token.get {kind: "id"}`: the session's ID token has expired and the provider sent no new one on
   * refresh (providers need not, OIDC Core §12.2). Sign in again for a fresh one.
   */
  'ID_TOKEN_EXPIRED',
  /** The identity provider could not be reached or answered with a transient error. */
  'IDP_UNAVAILABLE',
  /** The identity provider answered with something the broker cannot accept. */
  'IDP_ERROR',
  /** The OS keychain could not be used. */
  'KEYCHAIN_UNAVAILABLE',
  /** The configuration file is invalid; `field` names the offending field. */
  'CONFIG_INVALID',
  /** An unexpected failure inside the daemon. */
  'INTERNAL',
  /**
   * CLI only (`service install`): the user's service manager cannot be reached (no user bus, no
   * systemctl or launchctl) or refused a step. Nothing is left installed.
   */
  'SERVICE_MANAGER_ERROR',
  /** Daemon start-up only, never on the wire: another daemon already answers on the socket (exit 4). */
  'ALREADY_RUNNING',
  /** Daemon start-up only, never on the wire: the socket's directory cannot be created or is not private to the user. */
  'SOCKET_DIR_UNSAFE',
  // Raised by the client library, never sent by the daemon:
  /** Nothing listens on the socket. */
  'DAEMON_NOT_RUNNING',
  /** The socket is not owned by the current user: the client refuses to talk to it. */
  'SOCKET_UNTRUSTED',
  /** The connection to the daemon closed before the answer arrived. */
  'CONNECTION_LOST',
  /** The call did not complete within its timeout. */
  'TIMEOUT',
  /** The caller's AbortSignal fired. */
  'ABORTED',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const errorCodeSet: ReadonlySet<string> = new Set(ERROR_CODES);

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && errorCodeSet.has(value);
}

/** The error object on the wire. */
export interface WireError {
  readonly code: ErrorCode;
  readonly message: string;
  /** For BAD_REQUEST and CONFIG_INVALID: the dotted path of the offending field. */
  readonly field?: string;
  /** For IDP_UNAVAILABLE: when the broker will try the provider again (epoch ms). */
  readonly retryAt?: number;
}

export interface BrokerErrorOptions {
  readonly field?: string;
  readonly retryAt?: number;
  readonly cause?: unknown;
}

/** The error type of the whole product: same `code` on the wire, in the daemon and in the client. */
export class BrokerError extends Error {
  override readonly name = 'BrokerError';
  readonly code: ErrorCode;
  readonly field?: string;
  readonly retryAt?: number;

  constructor(code: ErrorCode, message: string, options: BrokerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options.field !== undefined) this.field = options.field;
    if (options.retryAt !== undefined) this.retryAt = options.retryAt;
  }

  toWire(): WireError {
    return {
      code: this.code,
      message: this.message,
      ...(this.field === undefined ? {} : { field: this.field }),
      ...(this.retryAt === undefined ? {} : { retryAt: this.retryAt }),
    };
  }

  static fromWire(error: WireError): BrokerError {
    return new BrokerError(error.code, error.message, {
      ...(error.field === undefined ? {} : { field: error.field }),
      ...(error.retryAt === undefined ? {} : { retryAt: error.retryAt }),
    });
  }
}
