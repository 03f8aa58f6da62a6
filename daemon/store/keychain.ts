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
import { BrokerError, profileName } from '../../proto/index.js';
import { Secret } from '../secret.js';
import { decodeRevocations, encodeRevocations, REVOCATION_ACCOUNT, type PendingRevocation } from './revocation-entry.js';

export const KEYCHAIN_SERVICE = 'tokenbroker';
/** The entry layout this version writes and reads. */
export const ENTRY_VERSION = 1;
/**
 * The prefix of the accounts `probe()` uses; it can never start a profile name (those start with a
 * letter or digit). Each probe uses an account of its own (`.tokenbroker-probe-<pid>-<n>-<random>`):
 * concurrent probes sharing one account overwrote and deleted each other's entry and reported a
 * working keychain as unavailable.
 */
export const PROBE_ACCOUNT = '.tokenbroker-probe';
let probes = 0;

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

// ---- the entry format ----------------------------------------------------------------------------

type DecodeResult = { readonly ok: true; readonly tokens: StoredTokens } | { readonly ok: false; readonly reason: string; readonly field?: string };

export function encodeEntry(tokens: StoredTokens): string {
  const entry = {
    v: ENTRY_VERSION,
    accessToken: tokens.accessToken.reveal(),
    ...(tokens.refreshToken === undefined ? {} : { refreshToken: tokens.refreshToken.reveal() }),
    ...(tokens.idToken === undefined ? {} : { idToken: tokens.idToken.reveal() }),
    expiresAt: tokens.expiresAt,
    scopes: tokens.scopes,
    tokenType: tokens.tokenType,
    ...(tokens.subject === undefined ? {} : { subject: tokens.subject }),
    ...(tokens.email === undefined ? {} : { email: tokens.email }),
    savedAt: tokens.savedAt,
    ...(tokens.issuer === undefined ? {} : { issuer: tokens.issuer }),
    ...(tokens.clientId === undefined ? {} : { clientId: tokens.clientId }),
  };
  const json = JSON.stringify(entry);
  // Never write what `load` would reject.
  const check = decodeEntry(json);
  if (!check.ok) {
    throw new BrokerError('INTERNAL', `Refusing to save tokens: ${check.reason}`, check.field === undefined ? {} : { field: check.field });
  }
  return json;
}

/** Parses and validates an entry. Reasons name the field and never quote a value. */
export function decodeEntry(raw: string): DecodeResult {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return { ok: false, reason: 'the entry is not JSON (half-written, or written by another program)' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'the entry is not a JSON object' };
  }
  const entry = value as Record<string, unknown>;
  const bad = (field: string, expected: string): DecodeResult => ({ ok: false, field, reason: `field "${field}": expected ${expected}` });
  const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
  const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

  if (entry['v'] !== ENTRY_VERSION) {
    if (typeof entry['v'] === 'number' && entry['v'] > ENTRY_VERSION) {
      return { ok: false, field: 'v', reason: `entry version ${entry['v']} was written by a newer tokenbroker (this one reads ${ENTRY_VERSION})` };
    }
    return bad('v', `the entry version ${ENTRY_VERSION}`);
  }
  const { accessToken, refreshToken, idToken, expiresAt, scopes, tokenType, subject, email, savedAt, issuer, clientId } = entry;
  if (!isText(accessToken)) return bad('accessToken', 'a non-empty string');
  if (refreshToken !== undefined && !isText(refreshToken)) return bad('refreshToken', 'a non-empty string or nothing');
  if (idToken !== undefined && !isText(idToken)) return bad('idToken', 'a non-empty string or nothing');
  if (!isTime(expiresAt)) return bad('expiresAt', 'a time in epoch milliseconds');
  if (!Array.isArray(scopes) || !scopes.every((s) => typeof s === 'string')) return bad('scopes', 'an array of strings');
  if (!isText(tokenType)) return bad('tokenType', 'a non-empty string');
  if (subject !== undefined && typeof subject !== 'string') return bad('subject', 'a string or nothing');
  if (email !== undefined && typeof email !== 'string') return bad('email', 'a string or nothing');
  if (!isTime(savedAt)) return bad('savedAt', 'a time in epoch milliseconds');
  if (issuer !== undefined && !isText(issuer)) return bad('issuer', 'a non-empty string or nothing');
  if (clientId !== undefined && !isText(clientId)) return bad('clientId', 'a non-empty string or nothing');

  const tokens: StoredTokens = { accessToken: new Secret(accessToken), expiresAt, scopes: [...(scopes as string[])], tokenType, savedAt };
  if (refreshToken !== undefined) tokens.refreshToken = new Secret(refreshToken);
  if (idToken !== undefined) tokens.idToken = new Secret(idToken);
  if (subject !== undefined) tokens.subject = subject;
  if (email !== undefined) tokens.email = email;
  if (issuer !== undefined) tokens.issuer = issuer;
  if (clientId !== undefined) tokens.clientId = clientId;
  return { ok: true, tokens };
}

function checkProfile(profile: string): string {
  return profileName(profile, 'profile');
}

// ---- errors --------------------------------------------------------------------------------------

const DOCTOR_HINT = 'Run "tokenbroker doctor" for a diagnosis.';

/** Turns a keytar/libsecret failure into KEYCHAIN_UNAVAILABLE with what to do about it. */
export function keychainUnavailable(what: string, error: unknown, redact: readonly string[] = []): BrokerError {
  let detail = error instanceof Error ? error.message : String(error);
  for (const secret of redact) if (secret.length > 0) detail = detail.split(secret).join('[redacted]');
  detail = (detail.split('\n')[0] ?? '').trim().slice(0, 300) || 'unknown error';
  return new BrokerError('KEYCHAIN_UNAVAILABLE', `Cannot ${what}: ${detail}. ${hintFor(detail)} ${DOCTOR_HINT}`, { cause: error });
}

function hintFor(detail: string): string {
  if (/autolaunch D-Bus|DBUS_SESSION_BUS_ADDRESS|Could not connect|Failed to connect to socket|session bus/i.test(detail)) {
    return 'There is no D-Bus session bus: run tokenbroker inside your desktop session (or start one with dbus-run-session and an unlocked gnome-keyring).';
  }
  if (/org\.freedesktop\.secrets|ServiceUnknown|secret service/i.test(detail)) {
    return 'No Secret Service is running: install and unlock a keyring (Debian/Ubuntu: apt-get install gnome-keyring libsecret-1-0), or enable the Secret Service integration of KeePassXC.';
  }
  if (/locked|prompt|dismissed|cancel/i.test(detail)) {
    return 'The keyring is locked: unlock it (log in to the desktop session, or use Seahorse / "Passwords and Keys").';
  }
  if (/libsecret|cannot open shared object|keytar/i.test(detail)) {
    return 'The keytar native module cannot be loaded: install libsecret (Debian/Ubuntu: apt-get install libsecret-1-0) and rebuild it (npm rebuild keytar, needs libsecret-1-dev).';
  }
  return 'Make sure the OS keychain is running and unlocked.';
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

/**
 * The keychain took the entry but gives back nothing (or something else). gnome-keyring does this
 * when its keyring was unlocked with a different password than it was created with.
 */
function storedButNotReturned(service: string, which: string): BrokerError {
  return new BrokerError(
    'KEYCHAIN_UNAVAILABLE',
    `The keychain accepted ${which} (service "${service}") but does not return it. The keyring is probably unlocked ` +
      `with a different password than it was created with: unlock it with the right one, or recreate it (Seahorse). ${DOCTOR_HINT}`,
  );
}

// ---- in memory, for unit tests -----------------------------------------------------------------

/** A `TokenStore` in memory with the same format and checks as the keychain. For unit tests only. */
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
