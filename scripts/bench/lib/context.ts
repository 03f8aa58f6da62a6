/** What every benchmark section gets, and what it returns. */
import type { TokenResult } from '../../../proto/index.js';
import type { BenchEnv, BrokerHarness } from './env.js';

export interface BenchContext {
  readonly smoke: boolean;
  readonly env: BenchEnv;
  /** Daemon A: one profile ("main"), signed in through the browser, a one-hour access token. */
  readonly main: BrokerHarness;
  /** A's token.get answer (the floor server answers with exactly this payload). */
  readonly token: TokenResult;
  readonly log: (message: string) => void;
}

export interface TargetCheck {
  /** e.g. "1. throughput 16 clients" */
  readonly what: string;
  readonly target: string;
  readonly value: string;
  readonly met: boolean;
  /** A failure that means something is broken (smoke exits non-zero), not a noisy performance ratio. */
  readonly breakage?: boolean;
}

export interface SectionResult {
  readonly name: string;
  readonly title: string;
  /** Markdown tables and notes, printed and written to bench/README.md. */
  readonly report: string;
  readonly targets: readonly TargetCheck[];
  /** Everything measured, for the JSON file. */
  readonly data: unknown;
}
