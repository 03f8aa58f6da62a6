/** Abort signals on calls: the one error of an aborted call, and a promise raced against a signal. */
import { BrokerError } from '../proto/errors.js';

/** The error of an aborted call (code ABORTED), carrying the signal's reason as its cause. */
export function abortError(signal: AbortSignal | undefined): BrokerError {
  return new BrokerError('ABORTED', 'the call was aborted', { cause: signal?.reason });
}

/** `promise`, unless `signal` aborts first (then ABORTED). */
export function withSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    const stopListening = () => signal.removeEventListener('abort', onAbort);
    // Both reactions run in the same tick, in this order: the listener is gone before the caller resumes.
    void promise.then(stopListening, stopListening);
    void promise.then(resolve, reject);
  });
}
