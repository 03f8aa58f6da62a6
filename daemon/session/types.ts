/**
 * What a Session is given (by the Broker) and what token.get asks of it.
 */
import type { BrokerEvent, TokenKind } from '../../proto/index.js';
import type { OpenBrowser } from '../browser.js';
import type { ProfileConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { Caller, startLoopbackListener } from '../loopback-listener.js';
import type { HttpClient, ProviderMetadata } from '../oauth/index.js';
import type { TokenStore } from '../store/types.js';
import type { PendingRevocations } from './pending-revocations.js';

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
  readonly onLoopbackCallback: (url: string, caller: Caller) => Promise<{ ok: boolean; message: string }>;
  /** Remembers a pending provider logout, so its redirect back is recognised. */
  readonly expectLogoutReturn: (state: string, profile: string) => void;
  readonly now?: () => number;
  /** Starts the sign-in's loopback listener (unit tests pass a fake). @default startLoopbackListener */
  readonly startListener?: typeof startLoopbackListener;
  /**
   * Revocations logouts still owe (kept in the keychain). A logout records its token there before it
   * deletes the entry; restore finishes a logout cut short in between instead of bringing it back.
   */
  readonly revocations?: PendingRevocations;
}

export interface TokenRequest {
  readonly minValidSeconds?: number;
  /** How long to wait for a refresh before answering IDP_UNAVAILABLE. */
  readonly waitMs: number;
  readonly rejected?: string;
  readonly signal: AbortSignal;
  /** A narrower token: these scopes only (RFC 6749 §6). */
  readonly scopes?: readonly string[];
  /** A token for these resource servers (RFC 8707). */
  readonly resource?: readonly string[];
  /** "id": the session's ID token. @default "access" */
  readonly kind?: TokenKind;
}
