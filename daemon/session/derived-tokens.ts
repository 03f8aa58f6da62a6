/**
 * Access tokens a session derives from its grant for a narrower request: fewer scopes (RFC 6749 §6,
 * a refresh with a narrower `scope`) and/or named resource servers (RFC 8707 §2.2). Each distinct
 * (scopes, resource) is one key with its own token and expiry; at most MAX_DERIVED_TOKENS keys per
 * profile, the least recently used evicted first. The session's own (primary) token is not here.
 */
import type { Secret } from '../secret.js';

/** Keys (distinct scopes + resource) per profile; beyond this the least recently used one is dropped. */
export const MAX_DERIVED_TOKENS = 16;

export interface DerivedToken {
  readonly accessToken: Secret;
  readonly tokenType: string;
  /** Conservative expiry (epoch ms), as for the primary token. */
  readonly expiresAt: number;
  readonly scopes: readonly string[];
  /** When it was received (epoch ms). */
  readonly savedAt: number;
}

export interface DerivedEntry {
  readonly key: string;
  /** Sorted, without duplicates; undefined when the request named none (the granted scopes). */
  readonly scopes: readonly string[] | undefined;
  readonly resource: readonly string[] | undefined;
  token: DerivedToken | undefined;
  /** The refresh in flight for this key: concurrent requests share it. */
  refreshing: Promise<DerivedToken> | undefined;
  /** Consecutive transient failures, and when the next attempt may start (epoch ms). */
  failures: number;
  retryAt: number;
}

/** Sorted and without duplicates; undefined for undefined or empty. */
export function normalise(values: readonly string[] | undefined): readonly string[] | undefined {
  if (values === undefined || values.length === 0) return undefined;
  return [...new Set(values)].sort();
}

/**
 * The key of a request: its scopes and resources, order and duplicates ignored. Undefined when it names
 * neither (the primary token). Scope tokens have no space and URIs no newline, so the key is unambiguous.
 */
export function tokenKey(scopes: readonly string[] | undefined, resource: readonly string[] | undefined): string | undefined {
  if (scopes === undefined && resource === undefined) return undefined;
  return `${(scopes ?? []).join(' ')}\n${(resource ?? []).join('\n')}`;
}

export class DerivedTokens {
  /** Insertion order is recency: the first entry is the least recently used. */
  private readonly entries = new Map<string, DerivedEntry>();

  constructor(
    private readonly max: number = MAX_DERIVED_TOKENS,
    private readonly onEvict: (entry: DerivedEntry) => void = () => undefined,
  ) {}

  /** The entry for these (normalised) scopes and resources, created when new; now the most recently used. */
  entry(scopes: readonly string[] | undefined, resource: readonly string[] | undefined): DerivedEntry {
    const key = tokenKey(scopes, resource) ?? '';
    let entry = this.entries.get(key);
    if (entry === undefined) {
      entry = { key, scopes, resource, token: undefined, refreshing: undefined, failures: 0, retryAt: 0 };
    } else this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.max) {
      // A refresh in flight for an evicted key still answers the requests waiting on it.
      const [oldest] = this.entries.values();
      this.entries.delete(oldest!.key);
      this.onEvict(oldest!);
    }
    return entry;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Keys from least to most recently used. */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  /** Forgets every derived token (the session ended or another sign-in replaced it). */
  clear(): void {
    this.entries.clear();
  }
}
