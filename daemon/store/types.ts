/** What the token store keeps per profile, and the store's interface (the keychain, or a fake in tests). */
import type { Secret } from '../secret.js';
import type { PendingRevocation } from './revocation-entry.js';

export interface StoredTokens {
  accessToken: Secret;
  refreshToken?: Secret;
  idToken?: Secret;
  /** When the access token expires (epoch ms). */
  expiresAt: number;
  scopes: string[];
  tokenType: string;
  subject?: string;
  email?: string;
  /** `preferred_username`, for display only (OIDC Core §5.1: not unique, not stable). */
  username?: string;
  /** When these tokens were saved (epoch ms). */
  savedAt: number;
  /**
   * The binding: the issuer and client id the tokens were obtained from. A profile later pointed elsewhere
   * must never send them there (session.ts `bindingProblem`). Absent in entries of earlier versions.
   */
  issuer?: string;
  clientId?: string;
}

export interface TokenStore {
  /** The profile's tokens; `undefined` when there is no entry or the entry is corrupt (see `onCorrupt`). */
  load(profile: string): Promise<StoredTokens | undefined>;
  /** Writes, then reads back: an entry the keychain does not return is KEYCHAIN_UNAVAILABLE. */
  save(profile: string, tokens: StoredTokens): Promise<void>;
  /** True when an entry was deleted. */
  delete(profile: string): Promise<boolean>;
  /** Profiles that have an entry, sorted. */
  list(): Promise<string[]>;
  /** Writes, reads and deletes a probe entry; throws KEYCHAIN_UNAVAILABLE with a hint (for `doctor`). */
  probe(): Promise<void>;
  /** The revocations logouts still owe (see revocation-entry.ts); `[]` when there is no entry. */
  loadRevocations(): Promise<PendingRevocation[]>;
  /** Replaces them (written and read back); an empty list deletes the entry. */
  saveRevocations(pending: readonly PendingRevocation[]): Promise<void>;
}

/** What `load` found wrong with an entry. Names the field, never a value. */
export interface CorruptEntry {
  readonly service: string;
  readonly profile: string;
  readonly reason: string;
  readonly field?: string;
}
