/**
 * The shape every `tokenbroker doctor` check returns, and what the checks get to work with.
 */
import type { BrokerConfig } from '../config.js';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

/** One check's verdict: what was found (`detail`) and, when something is wrong, what to do (`fix`). */
export interface CheckResult {
  /** Stable id for scripts: "node", "config", "socket-dir", "daemon", "keychain", "service", "scheme:<profile>", "provider:<profile>". */
  readonly id: string;
  /** A short human title. */
  readonly title: string;
  readonly status: CheckStatus;
  /** What was found, with the values measured (versions, paths, seconds). Never a secret. */
  readonly detail: string;
  /** The command or edit that fixes it; present for `fail` and for `warn`s worth acting on. */
  readonly fix?: string;
}

export interface DoctorOptions {
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** The config file named on the command line (`--config`); else `$TOKENBROKER_CONFIG`, else the platform default. */
  readonly configPath?: string;
  /** The daemon's socket (`--socket`); else `$TOKENBROKER_SOCKET`, else the per-user default. */
  readonly socketPath?: string;
  /** Longest time one check may take before it is reported as failed. @default 15000 */
  readonly checkTimeoutMs?: number;
  /** Timeout of each HTTP request to a provider. @default 5000 */
  readonly httpTimeoutMs?: number;
  /** Timeout of each keychain call. @default 5000 */
  readonly keychainTimeoutMs?: number;
  /** The local clock (for the skew measurement). @default Date.now */
  readonly now?: () => number;
}

/** The options resolved once, plus what the config check found (for the per-profile checks). */
export interface DoctorContext {
  readonly env: NodeJS.ProcessEnv;
  readonly configPath: string;
  /** `--config` was given: the fix texts repeat it. */
  readonly configFromFlag: boolean;
  readonly socketPath: string;
  readonly httpTimeoutMs: number;
  readonly keychainTimeoutMs: number;
  readonly now: () => number;
  /** The loaded config, or undefined when it could not be loaded. */
  readonly config: BrokerConfig | undefined;
}

export function result(id: string, title: string, status: CheckStatus, detail: string, fix?: string): CheckResult {
  return fix === undefined ? { id, title, status, detail } : { id, title, status, detail, fix };
}
