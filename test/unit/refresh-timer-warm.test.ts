/**
 * The refresh timer warms up what a refresh needs (got and jose, loaded lazily) shortly before it fires,
 * so a planned refresh does not wait for module loading (daemon/session/refresh-timer.ts).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RefreshTimer, WARM_AHEAD_MS } from '../../daemon/session/refresh-timer.js';

beforeEach(() => {
  vi.useFakeTimers({ now: 1_800_000_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

function timer() {
  const calls: string[] = [];
  const t = new RefreshTimer(
    Date.now,
    () => calls.push(`fire@${Date.now()}`),
    () => calls.push(`warm@${Date.now()}`),
  );
  return { t, calls };
}

describe('RefreshTimer warm-up', () => {
  it('warms WARM_AHEAD_MS before firing, once', async () => {
    const { t, calls } = timer();
    const start = Date.now();
    t.set(start + 10 * 60_000);
    await vi.advanceTimersByTimeAsync(10 * 60_000 - WARM_AHEAD_MS - 1);
    expect(calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([`warm@${start + 10 * 60_000 - WARM_AHEAD_MS}`]);
    await vi.advanceTimersByTimeAsync(WARM_AHEAD_MS);
    expect(calls).toEqual([`warm@${start + 10 * 60_000 - WARM_AHEAD_MS}`, `fire@${start + 10 * 60_000}`]);
  });

  it('a timer due sooner than that warms at once', async () => {
    const { t, calls } = timer();
    const start = Date.now();
    t.set(start + 5_000);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toEqual([`warm@${start}`]);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(calls).toEqual([`warm@${start}`, `fire@${start + 5_000}`]);
  });

  it('clear() and a new set() drop the pending warm-up', async () => {
    const { t, calls } = timer();
    const start = Date.now();
    t.set(start + 10 * 60_000);
    t.clear();
    await vi.advanceTimersByTimeAsync(11 * 60_000);
    expect(calls).toEqual([]);
    t.set(Date.now() + 2 * 60_000);
    t.set(Date.now() + 20 * 60_000);
    await vi.advanceTimersByTimeAsync(2 * 60_000);
    expect(calls).toEqual([]);
  });
});
