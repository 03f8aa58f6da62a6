/**
 * The token store: one OS keychain entry per profile (keytar: macOS Keychain, Windows Credential
 * Manager, Linux Secret Service). Tokens never touch the disk in plaintext, and there is no fallback
 * to a file: a keychain that cannot be used is KEYCHAIN_UNAVAILABLE, with a hint on what to do.
 *
 * Entry layout: service `tokenbroker`, account = profile name, password = the JSON of `StoredEntry`
 * (`v: 1`). Every token read back is wrapped in `Secret`; no error message carries a token.
 *
 * A corrupt entry (half-written, edited by hand, written by a newer version) does not throw: `load`
 * returns `undefined`, so the profile simply reads as signed out and start-up never breaks, and the
 * `onCorrupt` callback reports what was wrong (which field) so the daemon can log it. The next
 * successful login overwrites the entry.
 */
import { randomBytes } from 'node:crypto';
import { BrokerError } from '../../proto/index.js';
import { checkProfile, decodeEntry, encodeEntry } from './entry.js';
import { DOCTOR_HINT, keychainUnavailable, storedButNotReturned } from './keychain-errors.js';
import { decodeRevocations, encodeRevocations, REVOCATION_ACCOUNT, type PendingRevocation } from './revocation-entry.js';
import type { CorruptEntry, StoredTokens, TokenStore } from './types.js';

export type { CorruptEntry, StoredTokens, TokenStore } from './types.js';

export const KEYCHAIN_SERVICE = 'tokenbroker';
/**
 * The prefix of the accounts `probe()` uses; it can never start a profile name (those start with a
 * letter or digit). Each probe uses an account of its own (`.tokenbroker-probe-<pid>-<n>-<random>`):
 * concurrent probes sharing one account overwrote and deleted each other's entry and reported a
 * working keychain as unavailable.
 */
export const PROBE_ACCOUNT = '.tokenbroker-probe';
let probes = 0;

/** The part of keytar this store uses (tests can pass their own). */
export interface KeytarLike {
  getPassword(service: string, account: string): Promise<string | null>;
  setPassword(service: string, account: string, password: string): Promise<void>;
  deletePassword(service: string, account: string): Promise<boolean>;
  findCredentials(service: string): Promise<Array<{ account: string; password: string }>>;
}

export interface KeychainStoreOptions {
  /** The keychain service name; tests use a random one. @default "tokenbroker" */
  readonly service?: string;
  /** @default the keytar module, loaded on first use */
  readonly keytar?: KeytarLike;
  /** Told about entries that exist but cannot be used. @default ignore */
  readonly onCorrupt?: (entry: CorruptEntry) => void;
  /**
   * How long one keychain call may take. A locked keyring can wait forever on an unlock prompt that
   * nobody sees (no desktop session). @default 15000
   */
  readonly timeoutMs?: number;
}

let keytarModule: Promise<KeytarLike> | undefined;

/** keytar is a native addon: it is loaded on first use, so importing this module never loads it. */
function loadKeytar(): Promise<KeytarLike> {
  keytarModule ??= import('keytar').then(
    (mod) => {
      const loaded = mod as unknown as Partial<KeytarLike> & { default?: KeytarLike };
      return loaded.default ?? (loaded as KeytarLike);
    },
    (error: unknown) => {
      keytarModule = undefined;
      throw keychainUnavailable('load the keytar module', error);
    },
  );
  return keytarModule;
}

// ---- the keychain store --------------------------------------------------------------------------

export class KeychainStore implements TokenStore {
  readonly service: string;
  readonly #keytar: KeytarLike | undefined;
  readonly #onCorrupt: (entry: CorruptEntry) => void;
  readonly #timeoutMs: number;

  constructor(options: KeychainStoreOptions = {}) {
    this.service = options.service ?? KEYCHAIN_SERVICE;
    if (this.service.length === 0) throw new BrokerError('INTERNAL', 'KeychainStore: options.service must not be empty', { field: 'service' });
    this.#keytar = options.keytar;
    this.#onCorrupt = options.onCorrupt ?? (() => {});
    this.#timeoutMs = options.timeoutMs ?? 15_000;
  }

  async load(profile: string): Promise<StoredTokens | undefined> {
    checkProfile(profile);
    const raw = await this.#call(`read the keychain entry of profile "${profile}"`, (k) => k.getPassword(this.service, profile));
    if (raw === null) {
      // libsecret answers null, not an error, for an item in a locked collection: tell "no entry" from
      // "cannot read" with a probe (a write to a locked collection fails), so the caller retries later
      // instead of treating the profile as signed out.
      await this.probe();
      return undefined;
    }
    const decoded = decodeEntry(raw);
    if (decoded.ok) return decoded.tokens;
    this.#onCorrupt({ service: this.service, profile, reason: decoded.reason, ...(decoded.field === undefined ? {} : { field: decoded.field }) });
    return undefined;
  }

  async save(profile: string, tokens: StoredTokens): Promise<void> {
    checkProfile(profile);
    const json = encodeEntry(tokens);
    const what = `save the keychain entry of profile "${profile}"`;
    await this.#call(what, (k) => k.setPassword(this.service, profile, json), [json]);
    const readBack = await this.#call(what, (k) => k.getPassword(this.service, profile), [json]);
    if (readBack !== json) throw storedButNotReturned(this.service, `profile "${profile}"`);
  }

  async delete(profile: string): Promise<boolean> {
    checkProfile(profile);
    return this.#call(`delete the keychain entry of profile "${profile}"`, (k) => k.deletePassword(this.service, profile));
  }

  async list(): Promise<string[]> {
    const credentials = await this.#call(`list the keychain entries of service "${this.service}"`, (k) => k.findCredentials(this.service));
    // Only the account names leave this function; the passwords are dropped here.
    return (
      credentials
        .map((c) => c.account)
        // Accounts that are not profiles (probes, pending revocations) start with a dot; profiles cannot.
        .filter((account) => !account.startsWith('.'))
        .sort()
    );
  }

  async probe(): Promise<void> {
    const account = `${PROBE_ACCOUNT}-${process.pid}-${++probes}-${randomBytes(4).toString('hex')}`;
    const value = `probe-${Date.now()}-${randomBytes(8).toString('hex')}`;
    const what = `use the OS keychain (service "${this.service}")`;
    await this.#call(what, (k) => k.setPassword(this.service, account, value));
    try {
      const readBack = await this.#call(what, (k) => k.getPassword(this.service, account));
      if (readBack !== value) throw storedButNotReturned(this.service, 'the probe entry');
    } finally {
      await this.#call(what, (k) => k.deletePassword(this.service, account)).catch(() => false);
    }
  }

  async loadRevocations(): Promise<PendingRevocation[]> {
    const raw = await this.#call('read the pending revocations', (k) => k.getPassword(this.service, REVOCATION_ACCOUNT));
    if (raw === null) return [];
    try {
      const { pending, dropped } = decodeRevocations(raw);
      if (dropped.length > 0)
        this.#onCorrupt({ service: this.service, profile: REVOCATION_ACCOUNT, reason: `unreadable records dropped: ${dropped.join(', ')}` });
      return pending;
    } catch (error) {
      this.#onCorrupt({ service: this.service, profile: REVOCATION_ACCOUNT, reason: (error as Error).message });
      return [];
    }
  }

  async saveRevocations(pending: readonly PendingRevocation[]): Promise<void> {
    const what = 'save the pending revocations';
    if (pending.length === 0) {
      await this.#call(what, (k) => k.deletePassword(this.service, REVOCATION_ACCOUNT));
      return;
    }
    const json = encodeRevocations(pending);
    await this.#call(what, (k) => k.setPassword(this.service, REVOCATION_ACCOUNT, json), [json]);
    const readBack = await this.#call(what, (k) => k.getPassword(this.service, REVOCATION_ACCOUNT), [json]);
    if (readBack !== json) throw storedButNotReturned(this.service, 'the pending revocations');
  }

  /** One keytar call: lazy load, a timeout, and every failure mapped to KEYCHAIN_UNAVAILABLE. */
  async #call<T>(what: string, operation: (keytar: KeytarLike) => Promise<T>, redact: readonly string[] = []): Promise<T> {
    const keytar = this.#keytar ?? (await loadKeytar());
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(
          new BrokerError(
            'KEYCHAIN_UNAVAILABLE',
            `Cannot ${what}: the keychain did not answer within ${Math.round(this.#timeoutMs / 1000)} s. ` +
              `It is probably locked and waiting for an unlock prompt that cannot be shown: unlock it in your desktop session. ${DOCTOR_HINT}`,
          ),
        );
      }, this.#timeoutMs);
      timer.unref();
    });
    try {
      return await Promise.race([operation(keytar), timeout]);
    } catch (error) {
      if (error instanceof BrokerError) throw error;
      throw keychainUnavailable(what, error, redact);
    } finally {
      clearTimeout(timer);
    }
  }
}
