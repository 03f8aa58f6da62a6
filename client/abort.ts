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
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
