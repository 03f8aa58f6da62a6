/**
 * The in-flight slots of one client: at most MAX_IN_FLIGHT_PER_CONNECTION requests on the wire (the
 * daemon refuses more with TOO_MANY_REQUESTS); further calls wait here, in order.
 */
import { MAX_IN_FLIGHT_PER_CONNECTION } from '../proto/version.js';
import { withSignal } from './abort.js';

interface Waiter {
  wake(): void;
  woken: boolean;
}

export class SlotQueue {
  /** Calls waiting for a slot, in order. */
  private readonly waiting: Waiter[] = [];
  /** Slots handed to woken waiters that have not sent yet (so a new call cannot take them first). */
  private reserved = 0;
  /** Frees a call's slot; handed to Connection.request, which calls it once per call. */
  readonly release = (): void => {
    const next = this.waiting.shift();
    if (next) this.wake(next);
  };

  /** True when a call may be sent now without waiting: a slot is free and nobody is queued ahead. */
  canSendNow(inFlight: number): boolean {
    return this.waiting.length === 0 && this.hasSlot(inFlight);
  }

  /** True when a call must wait for `acquire` (someone queued ahead, or no slot free). */
  mustWait(inFlight: number): boolean {
    return this.waiting.length > 0 || !this.hasSlot(inFlight);
  }

  /**
   * Waits in line for a slot. On return the caller holds a reserved slot, which it takes over with
   * `take()` in the same tick as it sends.
   */
  async acquire(signal: AbortSignal | undefined): Promise<void> {
    const waiter: Waiter = { wake: () => {}, woken: false };
    const woken = new Promise<void>((resolve) => (waiter.wake = resolve));
    this.waiting.push(waiter);
    try {
      await withSignal(woken, signal);
    } catch (error) {
      const index = this.waiting.indexOf(waiter);
      if (index !== -1) this.waiting.splice(index, 1);
      else if (waiter.woken) {
        // Aborted just after being handed a slot: pass it on.
        this.reserved--;
        this.release();
      }
      throw error;
    }
  }

  /** The reserved slot becomes the caller's (it is about to send). */
  take(): void {
    this.reserved--;
  }

  /** The connection closed: wake every waiter so it finds out (it will reconnect or fail). */
  wakeAll(): void {
    for (const waiter of this.waiting.splice(0)) this.wake(waiter);
  }

  private hasSlot(inFlight: number): boolean {
    return inFlight + this.reserved < MAX_IN_FLIGHT_PER_CONNECTION;
  }

  private wake(waiter: Waiter): void {
    waiter.woken = true;
    this.reserved++;
    waiter.wake();
  }
}
