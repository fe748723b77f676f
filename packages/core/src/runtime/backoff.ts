/** Exponential backoff with jitter. */
export interface BackoffOptions {
  /** Delay before the second attempt. Default 100 ms. */
  readonly initialMs?: number;
  /** Upper bound of any delay. Default 30 s. */
  readonly maxMs?: number;
  /** Growth per attempt. Default 2. */
  readonly multiplier?: number;
  /** Random spread as a fraction of the delay (0..1): 0.2 gives ±20 %. Default 0.2. */
  readonly jitter?: number;
}

/** Retry policy of an agent. */
export interface RetryOptions {
  /** Total attempts, the first included. Default 3. `Infinity` retries until it succeeds. */
  readonly attempts?: number;
  readonly backoff?: BackoffOptions;
}

export interface ResolvedRetry {
  readonly attempts: number;
  readonly initialMs: number;
  readonly maxMs: number;
  readonly multiplier: number;
  readonly jitter: number;
}

export function resolveRetry(options: RetryOptions | undefined): ResolvedRetry {
  const b = options?.backoff ?? {};
  return {
    attempts: Math.max(1, options?.attempts ?? 3),
    initialMs: Math.max(0, b.initialMs ?? 100),
    maxMs: Math.max(0, b.maxMs ?? 30_000),
    multiplier: Math.max(1, b.multiplier ?? 2),
    jitter: Math.min(1, Math.max(0, b.jitter ?? 0.2)),
  };
}

/**
 * The delay after failed attempt number `attempt` (1-based). Jitter spreads retries of many records that
 * failed together (an outage) so they do not all hit the recovering server at once.
 */
export function backoffDelay(policy: Omit<ResolvedRetry, 'attempts'>, attempt: number, random: () => number = Math.random): number {
  const base = Math.min(policy.maxMs, policy.initialMs * policy.multiplier ** Math.max(0, attempt - 1));
  const spread = base * policy.jitter * (random() * 2 - 1);
  return Math.max(0, Math.min(policy.maxMs, Math.round(base + spread)));
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
