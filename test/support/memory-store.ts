/**
 * A `TokenStore` in memory with the same entry format and checks as the keychain (daemon/store/entry.ts),
 * for in-process tests that need no Secret Service.
 */
import { checkProfile, decodeEntry, encodeEntry } from '../../daemon/store/entry.js';
import { decodeRevocations, encodeRevocations, type PendingRevocation } from '../../daemon/store/revocation-entry.js';
import type { CorruptEntry, StoredTokens, TokenStore } from '../../daemon/store/types.js';

// Async without awaits on purpose: a bad profile name is a rejected promise, as with the keychain store.
/* eslint-disable @typescript-eslint/require-await */
export class MemoryStore implements TokenStore {
  readonly #entries = new Map<string, string>();
  readonly #onCorrupt: (entry: CorruptEntry) => void;

  constructor(options: { readonly onCorrupt?: (entry: CorruptEntry) => void } = {}) {
    this.#onCorrupt = options.onCorrupt ?? (() => {});
  }

  async load(profile: string): Promise<StoredTokens | undefined> {
    checkProfile(profile);
    const raw = this.#entries.get(profile);
    if (raw === undefined) return undefined;
    const decoded = decodeEntry(raw);
    if (decoded.ok) return decoded.tokens;
    this.#onCorrupt({ service: 'memory', profile, reason: decoded.reason, ...(decoded.field === undefined ? {} : { field: decoded.field }) });
    return undefined;
  }

  async save(profile: string, tokens: StoredTokens): Promise<void> {
    checkProfile(profile);
    this.#entries.set(profile, encodeEntry(tokens));
  }

  async delete(profile: string): Promise<boolean> {
    checkProfile(profile);
    return this.#entries.delete(profile);
  }

  async list(): Promise<string[]> {
    return [...this.#entries.keys()].sort();
  }

  async probe(): Promise<void> {}

  #revocations = '';

  async loadRevocations(): Promise<PendingRevocation[]> {
    return this.#revocations === '' ? [] : decodeRevocations(this.#revocations).pending;
  }

  async saveRevocations(pending: readonly PendingRevocation[]): Promise<void> {
    this.#revocations = pending.length === 0 ? '' : encodeRevocations(pending);
  }

  /** Puts a raw entry in place (to test how corrupt entries are handled). */
  putRaw(profile: string, raw: string): void {
    this.#entries.set(profile, raw);
  }
}
