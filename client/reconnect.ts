/** Reconnecting in the background after the daemon went away, with capped exponential backoff. */

const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;

export class Reconnector {
  private timer: NodeJS.Timeout | undefined;
  private delay = RECONNECT_MIN_MS;

  /**
   * @param attempt connects once (rejects when the daemon is not there)
   * @param wanted whether to keep trying (e.g. the client is open and has subscribers)
   */
  constructor(
    private readonly attempt: () => Promise<unknown>,
    private readonly wanted: () => boolean,
  ) {}

  /** Tries again after the current delay; each failure doubles it, up to RECONNECT_MAX_MS. */
  schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.attempt().catch(() => {
        this.delay = Math.min(this.delay * 2, RECONNECT_MAX_MS);
        if (this.wanted()) this.schedule();
      });
    }, this.delay);
    this.timer.unref();
  }

  /** Connected: the next outage starts from the shortest delay again. */
  reset(): void {
    this.delay = RECONNECT_MIN_MS;
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
