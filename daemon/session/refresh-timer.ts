/**
 * A session's one refresh timer, set for a wall-clock time. Node's timers count a monotonic delay, so
 * the time is checked again when the timer fires: early (a delay capped at MAX_TIMER_MS, or a clock that
 * moved back) means wait again for the rest.
 */
import { MAX_TIMER_MS } from './schedule.js';

/** How long before the timer fires `warm` runs (loading the modules a refresh needs takes tens of ms). */
export const WARM_AHEAD_MS = 30_000;

export class RefreshTimer {
  private timer: NodeJS.Timeout | undefined;
  private warmTimer: NodeJS.Timeout | undefined;
  private atValue: number | undefined;

  constructor(
    private readonly now: () => number,
    private readonly fire: () => void,
    /** Runs WARM_AHEAD_MS before the timer fires (or at once when it is due sooner). */
    private readonly warm?: () => void,
  ) {}

  /** When the timer fires next (epoch ms), if it is set. */
  get at(): number | undefined {
    return this.atValue;
  }

  set(at: number): void {
    this.clear();
    this.atValue = at;
    const delay = Math.min(Math.max(0, at - this.now()), MAX_TIMER_MS);
    if (this.warm && at - this.now() <= MAX_TIMER_MS) {
      const warm = this.warm;
      this.warmTimer = setTimeout(
        () => {
          this.warmTimer = undefined;
          warm();
        },
        Math.max(0, delay - WARM_AHEAD_MS),
      );
      this.warmTimer.unref();
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.now() < at - 1000) return this.set(at);
      this.atValue = undefined;
      this.fire();
    }, delay);
  }

  clear(): void {
    clearTimeout(this.timer);
    clearTimeout(this.warmTimer);
    this.timer = undefined;
    this.warmTimer = undefined;
    this.atValue = undefined;
  }
}
