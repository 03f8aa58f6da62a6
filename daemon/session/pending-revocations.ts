/**
 * Revocations a logout still owes the provider, kept in the keychain (store/revocation-entry.ts) so that
 * they survive a crash: a logout records the refresh token here BEFORE it deletes the session's entry,
 * and the record goes once the provider has answered — revoked (RFC 7009 §2.2: also for a token that was
 * already invalid) or refused for good. Transient failures (network, 5xx, 429) are retried with backoff,
 * and whatever is left is processed at the next daemon start, after the socket listens.
 *
 * One keychain entry for all profiles: read once at start, then rewritten whole under a lock.
 */
import type { Logger } from '../log.js';
import { randomUrlSafe } from '../oauth/pkce.js';
import { revokeToken, type ClientAuthentication, type HttpClient, type ProviderMetadata, type RevocationResult } from '../oauth/index.js';
import type { PendingRevocation } from '../store/revocation-entry.js';
import type { StoredTokens, TokenStore } from '../store/types.js';

export interface PendingRevocationsOptions {
  readonly store: TokenStore;
  readonly http: HttpClient;
  readonly log: Logger;
  /**
   * The revocation endpoint for a record written while discovery failed: the profile's, but only while
   * the profile still has the record's issuer and client id (else the token would go to another server).
   */
  readonly resolveEndpoint: (record: PendingRevocation) => Promise<string | undefined>;
  /**
   * The client secret to revoke a record's token with, when its profile has one (Google's desktop clients):
   * the profile's, under the same conditions as `resolveEndpoint`. Never stored in the record. @default none
   */
  readonly clientAuth?: (record: PendingRevocation) => ClientAuthentication | undefined;
  /** Backoff of retries after transient failures. @default 5000 / 600000 */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
}

export type NewRevocation = Omit<PendingRevocation, 'id' | 'createdAt'>;

export class PendingRevocations {
  private pending: PendingRevocation[] = [];
  private loaded = false;
  private lock: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private processing: Promise<void> | undefined;
  private disposed = false;

  constructor(private readonly options: PendingRevocationsOptions) {}

  /** Reads the keychain entry (once it works; a failure is thrown and the next call tries again). */
  load(): Promise<void> {
    return this.locked(() => this.ensureLoaded());
  }

  /** How many records are waiting (for logs and tests). */
  get size(): number {
    return this.pending.length;
  }

  /** True when these stored tokens are waiting to be revoked (a logout cut short after recording them). */
  holds(tokens: StoredTokens): boolean {
    return this.pending.some((p) => (tokens.refreshToken?.equals(p.token.reveal()) ?? false) || tokens.accessToken.equals(p.token.reveal()));
  }

  /** Records a revocation in the keychain (throws KEYCHAIN_UNAVAILABLE: then nothing was recorded). */
  add(revocation: NewRevocation): Promise<PendingRevocation> {
    return this.locked(async () => {
      await this.ensureLoaded();
      const record: PendingRevocation = { ...revocation, id: randomUrlSafe(), createdAt: Date.now() };
      const next = [...this.pending, record];
      await this.options.store.saveRevocations(next);
      this.pending = next;
      return record;
    });
  }

  /** Drops a record (revoked, refused for good, or its logout rolled back). */
  remove(id: string): Promise<void> {
    return this.locked(async () => {
      const next = this.pending.filter((p) => p.id !== id);
      if (next.length === this.pending.length) return;
      await this.options.store.saveRevocations(next);
      this.pending = next;
    });
  }

  /**
   * Revokes one record now. Revoked or refused for good: the record is removed. A transient failure keeps
   * it and schedules a retry with backoff.
   */
  async revoke(record: PendingRevocation, http: HttpClient = this.options.http): Promise<RevocationResult> {
    const { log } = this.options;
    let endpoint = record.revocationEndpoint;
    if (endpoint === undefined) {
      try {
        endpoint = await this.options.resolveEndpoint(record);
      } catch (error) {
        this.retryLater();
        return { revoked: false, reason: 'transient', message: `provider unreachable: ${(error as Error).message}` };
      }
    }
    const clientAuth = this.options.clientAuth?.(record);
    const result = await revokeToken({
      http,
      // Only the endpoint is used (RFC 7009 §2.1).
      metadata: { revocationEndpoint: endpoint } as ProviderMetadata,
      clientId: record.clientId,
      ...(clientAuth === undefined ? {} : { clientAuth }),
      token: record.token,
      tokenTypeHint: record.tokenTypeHint,
    });
    if (result.revoked || result.reason !== 'transient') {
      if (!result.revoked) log.warn({ profile: record.profile, reason: result.reason, status: result.status }, 'revocation refused for good; not retried');
      await this.remove(record.id).catch((error: unknown) => {
        log.warn(
          { profile: record.profile, err: { message: (error as Error).message } },
          'could not remove a done revocation from the keychain; it is retried (harmlessly) later',
        );
      });
    } else {
      log.warn({ profile: record.profile, status: result.status }, 'revocation failed for now; will retry');
      this.retryLater();
    }
    return result;
  }

  /** Processes every record (at start, and on each retry). Never throws. */
  processAll(): Promise<void> {
    this.processing ??= (async () => {
      try {
        await this.load();
      } catch (error) {
        this.options.log.warn({ err: { message: (error as Error).message } }, 'could not read the pending revocations; will retry');
        this.retryLater();
        return;
      }
      const records = [...this.pending];
      if (records.length > 0) this.options.log.info({ pending: records.length }, 'revoking tokens of earlier logouts');
      let transient = false;
      for (const record of records) {
        if (this.disposed) return;
        const result = await this.revoke(record);
        if (!result.revoked && result.reason === 'transient') transient = true;
        else if (result.revoked) this.options.log.info({ profile: record.profile }, 'revoked the token of an earlier logout');
      }
      if (!transient) this.failures = 0;
    })().finally(() => {
      this.processing = undefined;
    });
    return this.processing;
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.timer);
  }

  private retryLater(): void {
    if (this.disposed || this.timer !== undefined) return;
    const base = this.options.baseDelayMs ?? 5_000;
    const max = this.options.maxDelayMs ?? 600_000;
    const delay = Math.min(max, base * 2 ** this.failures);
    this.failures = Math.min(this.failures + 1, 30);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.processAll();
    }, delay);
    this.timer.unref();
  }

  private async ensureLoaded(): Promise<void> {
    if (this.loaded) return;
    this.pending = await this.options.store.loadRevocations();
    this.loaded = true;
  }

  private locked<T>(work: () => Promise<T>): Promise<T> {
    const run = this.lock.then(work, work);
    this.lock = run.catch(() => undefined);
    return run;
  }
}
