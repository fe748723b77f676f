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
    const stop = whenAborted(signal, reject);
    promise.then(
      (value) => {
        stop();
        resolve(value);
      },
      (error: unknown) => {
        stop();
        reject(toError(error));
      },
    );
  });
}

const subscribers = new WeakMap<AbortSignal, Set<(reason: Error) => void>>();

/**
 * Calls `listener` with the signal's reason once `signal` aborts (not if it already has), until
 * {@link offAbort}. Listeners of one signal share a single event listener: records in flight wait on their
 * partition's long-lived signal, and an AbortSignal walks its listeners on every add, so one event listener
 * per record would cost time in proportion to the records waiting, for each of them.
 */
export function onAbort(signal: AbortSignal, listener: (reason: Error) => void): void {
  let listeners = subscribers.get(signal);
  if (!listeners) {
    const created = new Set<(reason: Error) => void>();
    listeners = created;
    subscribers.set(signal, created);
    signal.addEventListener(
      'abort',
      () => {
        const reason = toError(signal.reason);
        const all = [...created];
        created.clear();
        for (const each of all) each(reason);
      },
      { once: true },
    );
  }
  listeners.add(listener);
}

/** Stops calling `listener` when `signal` aborts (see {@link onAbort}). */
export function offAbort(signal: AbortSignal, listener: (reason: Error) => void): void {
  subscribers.get(signal)?.delete(listener);
}

/** {@link onAbort}, returning how to stop listening. */
export function whenAborted(signal: AbortSignal, listener: (reason: Error) => void): () => void {
  onAbort(signal, listener);
  return () => offAbort(signal, listener);
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
