import { toError } from './errors.js';

/**
 * Settles like `promise`, or rejects with the signal's reason as soon as `signal` aborts, while `promise`
 * goes on (its outcome is then ignored). For handlers waiting on shared work, such as a batched query
 * several records wait for, that must stop waiting when their own record is aborted.
 *
 * @example const hit = await untilAborted(search.load(text), ctx.signal);
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(toError(signal.reason));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(toError(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(toError(error));
      },
    );
  });
}

/**
 * Resolves true once `promise` settles (fulfilled or rejected), or false when `ms` pass first; its timer is
 * cleared either way. For bounded waits: in-flight records before a commit or a stop, commits before a rejoin.
 */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
