import { StreamError, toError } from './errors.js';

export interface BatcherOptions {
  /** Largest batch handed to the function. Default 100. */
  readonly maxBatch?: number;
  /** How long the first item waits for others to join its batch. Default 5 ms. */
  readonly maxWaitMs?: number;
}

/** {@link Coalescer} options. */
export interface CoalescerOptions extends BatcherOptions {
  /**
   * Batches in flight at once. While that many are, a batch whose wait ran out keeps filling until one
   * settles (or it is full), like a Nagle: under load batches grow with the round trip, idle a lone item
   * still goes after `maxWaitMs`. Default unlimited.
   */
  readonly maxInFlight?: number;
}

interface Pending<I, O> {
  readonly item: I;
  readonly resolve: (value: O) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Coalesces concurrent single-item calls into batch calls (the DataLoader pattern), so an agent running
 * records concurrently can still query a server once per batch (`msearch`, one Flux query per symbol)
 * while each record keeps its own context, transaction and error handling.
 *
 * `fn` must return one result per item, in order. If it throws, every item of that batch rejects with the
 * error, and each record's retry policy takes over.
 *
 * @example
 * const search = new Batcher((queries: string[]) => es.msearchTop(queries), { maxBatch: 50, maxWaitMs: 5 });
 * app.agent(searchQueries, { concurrency: 64 }, async (q, ctx) => { const hit = await search.load(q.queryString); … });
 */
export class Batcher<I, O> {
  readonly #fn: (items: I[]) => Promise<readonly O[]>;
  readonly #maxBatch: number;
  readonly #maxWaitMs: number;
  #pending: Pending<I, O>[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(fn: (items: I[]) => Promise<readonly O[]>, options: BatcherOptions = {}) {
    this.#fn = fn;
    this.#maxBatch = Math.max(1, options.maxBatch ?? 100);
    this.#maxWaitMs = Math.max(0, options.maxWaitMs ?? 5);
  }

  load(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      if (this.#pending.length >= this.#maxBatch) this.#flush();
      else this.#timer ??= setTimeout(() => this.#flush(), this.#maxWaitMs);
    });
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#pending.splice(0, this.#maxBatch);
    if (this.#pending.length > 0) this.#timer = setTimeout(() => this.#flush(), this.#maxWaitMs);
    if (batch.length === 0) return;
    this.#fn(batch.map((p) => p.item)).then(
      (results) => {
        if (results.length !== batch.length) {
          const error = new StreamError('STATE_INVALID', `batch function returned ${results.length} results for ${batch.length} items`);
          for (const p of batch) p.reject(error);
          return;
        }
        batch.forEach((p, i) => p.resolve(results[i]!));
      },
      (error: unknown) => {
        for (const p of batch) p.reject(error);
      },
    );
  }
}

/**
 * @internal Coalesces concurrent calls into one call of `fn` per batch, like {@link Batcher}, for work
 * whose batch succeeds or fails as a whole (a produce request): every item of a batch shares one Promise,
 * so a record's send costs no Promise of its own on the hot path.
 */
export class Coalescer<I> {
  readonly #fn: (items: I[]) => Promise<void>;
  readonly #maxBatch: number;
  readonly #maxWaitMs: number;
  readonly #maxInFlight: number;
  #items: I[] = [];
  #shared: { promise: Promise<void>; resolve: () => void; reject: (error: unknown) => void } | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Batches handed to `fn` and not settled. */
  #inFlight = 0;
  /** The open batch's wait ran out while {@link #maxInFlight} batches were in flight: it goes when one settles. */
  #due = false;
  readonly #settle = (): void => {
    this.#inFlight -= 1;
    if (this.#due) this.#flush();
  };

  constructor(fn: (items: I[]) => Promise<void>, options: CoalescerOptions = {}) {
    this.#fn = fn;
    this.#maxBatch = Math.max(1, options.maxBatch ?? 100);
    this.#maxWaitMs = Math.max(0, options.maxWaitMs ?? 5);
    this.#maxInFlight = Math.max(1, options.maxInFlight ?? Infinity);
  }

  /** Resolves when the batch holding `item` succeeded; rejects with the batch's error. */
  add(item: I): Promise<void> {
    return this.addAll([item]);
  }

  /**
   * Adds items that must go in one batch, never split across two (a produce of several entries of one
   * partition in one request lands in order; split over two requests in flight at once, it may not).
   * A group that does not fit in the open batch closes it first; a group larger than `maxBatch` is a
   * batch of its own.
   */
  addAll(items: readonly I[]): Promise<void> {
    if (items.length === 0) return Promise.resolve();
    if (this.#items.length > 0 && this.#items.length + items.length > this.#maxBatch) this.#flush();
    for (const item of items) this.#items.push(item);
    if (!this.#shared) {
      let resolve!: () => void;
      let reject!: (error: unknown) => void;
      const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      this.#shared = { promise, resolve, reject };
    }
    const { promise } = this.#shared;
    if (this.#items.length >= this.#maxBatch) this.#flush();
    else if (!this.#due) this.#timer ??= setTimeout(this.#waited, this.#maxWaitMs);
    return promise;
  }

  /** The open batch waited `maxWaitMs`: it goes now, or when a batch in flight settles. */
  readonly #waited = (): void => {
    this.#timer = undefined;
    if (this.#inFlight >= this.#maxInFlight) this.#due = true;
    else this.#flush();
  };

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#due = false;
    const items = this.#items;
    const shared = this.#shared;
    this.#items = [];
    this.#shared = undefined;
    if (!shared || items.length === 0) return;
    this.#inFlight += 1;
    let call: Promise<void>;
    try {
      call = this.#fn(items);
    } catch (error) {
      call = Promise.reject(toError(error));
    }
    call.then(shared.resolve, shared.reject);
    call.then(this.#settle, this.#settle);
  }
}
