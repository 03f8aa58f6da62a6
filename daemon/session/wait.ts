/**
 * Waiting with a deadline and a client that may go away: the two primitives `token.get` needs while a
 * refresh is in flight or the next backoff slot is ahead.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { BrokerError } from '../../proto/index.js';

function gone(): BrokerError {
  return new BrokerError('CONNECTION_LOST', 'the client went away');
}

/** Resolves or rejects with `attempt`, unless the deadline (`late()`) or the signal comes first. */
export function raceDeadline<T>(attempt: Promise<T>, deadline: number, signal: AbortSignal, now: () => number, late: () => BrokerError): Promise<T> {
  if (signal.aborted) return Promise.reject(gone());
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(late()), Math.max(0, deadline - now()));
    const onAbort = () => reject(gone());
    signal.addEventListener('abort', onAbort, { once: true });
    attempt.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    });
  });
}

/** Resolves at `at` (by `now`), or rejects when the signal fires first. */
export async function sleepUntil(at: number, signal: AbortSignal, now: () => number): Promise<void> {
  if (signal.aborted) throw gone();
  try {
    await sleep(Math.max(0, at - now()), undefined, { signal });
  } catch {
    throw gone(); // the only way the timer rejects is the signal
  }
}

/**
 * Waits for a sign-in's outcome, or until `signal` fires: the waiting client leaves (LOGIN_CANCELLED for it
 * alone); the sign-in goes on for the others.
 */
export function waitForSignIn<T>(outcome: Promise<T>, signal: AbortSignal): Promise<T> {
  const left = () => new BrokerError('LOGIN_CANCELLED', 'the waiting client went away');
  if (signal.aborted) return Promise.reject(left());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(left());
    signal.addEventListener('abort', onAbort, { once: true });
    outcome.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
