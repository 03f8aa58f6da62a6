/**
 * What a new config changes for the running daemon: which profiles are added, removed, changed (and
 * whether a changed one may keep its session), and which stay as they are. Pure: the Broker applies it.
 *
 * A session is bound to the issuer and client id that issued its tokens (session/binding.ts): a profile
 * whose issuer or client id changed starts over; any other change (scopes, redirect, timers, policy,
 * `notify`) applies to the session as it is.
 */
import type { BrokerConfig, ProfileConfig } from './config.js';
import { Secret } from './secret.js';

export interface ConfigChange {
  readonly name: string;
  readonly profile: ProfileConfig;
  /** The issuer and client id are the same: the session (tokens, timers) is kept. */
  readonly keepsSession: boolean;
}

export interface ConfigDiff {
  /** In the new config's order. */
  readonly added: readonly ProfileConfig[];
  /** In the old config's order. */
  readonly removed: readonly string[];
  readonly changed: readonly ConfigChange[];
  readonly unchanged: readonly string[];
  /** The default profile is another one than before. */
  readonly defaultChanged: boolean;
}

export function diffConfigs(current: Pick<BrokerConfig, 'profiles' | 'defaultProfile'>, next: Pick<BrokerConfig, 'profiles' | 'defaultProfile'>): ConfigDiff {
  const added: ProfileConfig[] = [];
  const changed: ConfigChange[] = [];
  const unchanged: string[] = [];
  for (const [name, profile] of next.profiles) {
    const before = current.profiles.get(name);
    if (before === undefined) added.push(profile);
    else if (sameValue(before, profile)) unchanged.push(name);
    else changed.push({ name, profile, keepsSession: before.issuer === profile.issuer && before.clientId === profile.clientId });
  }
  const removed = [...current.profiles.keys()].filter((name) => !next.profiles.has(name));
  return { added, removed, changed, unchanged, defaultChanged: current.defaultProfile !== next.defaultProfile };
}

/** True when nothing changes at all. */
export function isEmptyDiff(diff: ConfigDiff): boolean {
  return diff.added.length === 0 && diff.removed.length === 0 && diff.changed.length === 0 && !diff.defaultChanged;
}

/** Deep equality of resolved config values (plain objects, arrays, primitives); key order does not matter. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  // A Secret (clientSecret) shows no keys: compare what it holds.
  if (a instanceof Secret || b instanceof Secret) return a instanceof Secret && b instanceof Secret && a.equals(b.reveal());
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, i) => sameValue(item, b[i]));
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const keys = Object.keys(left).filter((k) => left[k] !== undefined);
  if (keys.length !== Object.keys(right).filter((k) => right[k] !== undefined).length) return false;
  return keys.every((key) => Object.hasOwn(right, key) && sameValue(left[key], right[key]));
}
