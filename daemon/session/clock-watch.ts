/**
 * Timers do not run while a laptop sleeps (Node's timers follow a monotonic clock that stops during
 * suspend), and a wall clock that is set forward or back leaves every expiry computed against the old
 * time. A tick of a regular interval that arrives much later (or earlier) than planned by the wall clock
 * means one of those happened: `onJump` re-checks every session at once.
 */
export interface ClockWatchOptions {
  /** @default 5000 */
  readonly intervalMs?: number;
  /** How far off a tick may be before it counts as a jump. @default 10000 */
  readonly thresholdMs?: number;
  readonly now?: () => number;
  readonly onJump: (driftMs: number) => void;
}

export interface ClockWatch {
  stop(): void;
}

export function startClockWatch(options: ClockWatchOptions): ClockWatch {
  const intervalMs = options.intervalMs ?? 5_000;
  const thresholdMs = options.thresholdMs ?? 10_000;
  const now = options.now ?? Date.now;
  let expected = now() + intervalMs;
  const timer = setInterval(() => {
    const current = now();
    const drift = current - expected;
    expected = current + intervalMs;
    if (Math.abs(drift) >= thresholdMs) options.onJump(drift);
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
