import { Batcher, untilAborted } from '@stream/core';
import type { PricePoint, PriceSource } from './price-source.js';
import { dateToNanos, nanosToDate } from './time.js';

/** The market price an order is compared with. */
export interface MarketQuote {
  readonly price: number;
  /** When the price was observed (truncated to the millisecond). */
  readonly time: Date;
  readonly timeNs: bigint;
}

/** What the agent needs: the market price of a symbol at an instant, or null without market data. */
export interface PriceLookup {
  lookup(symbol: string, executedAt: Date, signal?: AbortSignal): Promise<MarketQuote | null>;
  /**
   * Lookups made together (a batch of orders): one answer per request, in order, each a quote, null
   * without market data, or the error of the query that should have answered it (the others still get theirs).
   */
  lookupAll(requests: readonly PriceRequest[], signal?: AbortSignal): Promise<(MarketQuote | null | Error)[]>;
}

/** One lookup of {@link PriceLookup.lookupAll}. */
export interface PriceRequest {
  readonly symbol: string;
  readonly executedAt: Date;
}

/** Orders by time, then price, so "the last point at or before t" is unique even across series. */
function compare(a: PricePoint, b: PricePoint): number {
  return a.timeNs < b.timeNs ? -1 : a.timeNs > b.timeNs ? 1 : a.price - b.price;
}

/**
 * The answer for an execution at `atNs` from `sorted` points (ascending by {@link compare}): the newest point
 * with `atNs - lookbackNs <= time <= atNs`; when several series of the symbol have a point at that very
 * time, the highest price. Null when there is none.
 */
export function quoteAt(sorted: readonly PricePoint[], atNs: bigint, lookbackNs: bigint): MarketQuote | null {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]!.timeNs <= atNs) lo = mid + 1;
    else hi = mid;
  }
  const point = sorted[lo - 1];
  if (!point || point.timeNs < atNs - lookbackNs) return null;
  return { price: point.price, timeNs: point.timeNs, time: nanosToDate(point.timeNs) };
}

/**
 * The per-order model: one query per lookup. The batched path must give exactly these answers; tests hold
 * the two side by side on random data.
 */
export async function lookupEach(source: PriceSource, symbol: string, executedAt: Date, signal?: AbortSignal): Promise<MarketQuote | null> {
  const atNs = dateToNanos(executedAt);
  const points = await source.last(symbol, atNs, signal);
  return quoteAt([...points].sort(compare), atNs, source.lookbackNs);
}

interface Lookup {
  readonly symbol: string;
  readonly atNs: bigint;
  readonly signal: AbortSignal | undefined;
}

type Answer = { readonly ok: true; readonly quote: MarketQuote | null } | { readonly ok: false; readonly error: unknown };

export interface MarketPricesOptions {
  /** Largest number of lookups answered together. Default 256. */
  readonly maxBatch?: number;
  /** How long the first lookup waits for others to join. Default 5 ms. */
  readonly maxWaitMs?: number;
  /**
   * Widest span of execution times one query covers, in ms. Orders of a symbol lying further apart are
   * split into several queries, so that no query reads an unbounded stretch of ticks: a query returns about
   * (tick rate × span) points. Default 15 minutes; lower it for dense tick data.
   */
  readonly maxSpanMs?: number;
}

/**
 * Groups lookups of executions at different times by symbol (and into spans of at most `maxSpanMs`), so
 * a time-ordered run of executions costs one Flux query per symbol, not one per order.
 */
export function planQueries<T extends { readonly symbol: string; readonly atNs: bigint }>(items: readonly T[], maxSpanNs: bigint): T[][] {
  const bySymbol = new Map<string, T[]>();
  for (const item of items) {
    const list = bySymbol.get(item.symbol);
    if (list) list.push(item);
    else bySymbol.set(item.symbol, [item]);
  }
  const groups: T[][] = [];
  for (const list of bySymbol.values()) {
    list.sort((a, b) => (a.atNs < b.atNs ? -1 : a.atNs > b.atNs ? 1 : 0));
    let group: T[] = [];
    for (const item of list) {
      if (group.length > 0 && item.atNs - group[0]!.atNs > maxSpanNs) {
        groups.push(group);
        group = [];
      }
      group.push(item);
    }
    groups.push(group);
  }
  return groups;
}

/** A signal that aborts once every one of `signals` has; none when one of them is missing (someone still waits). */
function allAborted(signals: readonly (AbortSignal | undefined)[]): { signal: AbortSignal | undefined; dispose: () => void } {
  if (signals.length === 0 || signals.some((s) => s === undefined)) return { signal: undefined, dispose: () => undefined };
  const controller = new AbortController();
  const live = new Set(signals as AbortSignal[]);
  const onAbort = (event: Event) => {
    live.delete(event.target as AbortSignal);
    if (live.size === 0) controller.abort(new Error('every record waiting for this query was aborted'));
  };
  for (const s of [...live]) {
    if (s.aborted) live.delete(s);
    else s.addEventListener('abort', onAbort, { once: true });
  }
  if (live.size === 0) controller.abort(new Error('every record waiting for this query was aborted'));
  return { signal: controller.signal, dispose: () => signals.forEach((s) => s?.removeEventListener('abort', onAbort)) };
}

type IndexedLookup = Lookup & { readonly index: number };

/** Lookups of one symbol waiting for the query in flight to finish, and how to hand them their answers. */
interface Waiting {
  readonly items: readonly Lookup[];
  readonly resolve: (answers: Answer[]) => void;
}

/**
 * Market prices for the agent, looked up in batches, in two steps:
 *
 * 1. A core {@link Batcher} collects the lookups of the records in flight for a few ms and hands them over
 *    together; they are grouped by symbol (and into spans of at most `maxSpanMs`, see {@link planQueries}).
 * 2. Per symbol, at most one query is in flight. Lookups of a symbol that arrive while its query runs wait
 *    for it, and all of them then share the next query. Under load (many orders, slow InfluxDB) batches
 *    therefore grow instead of shrinking: a symbol costs one query per query-latency, not one per order.
 *
 * Each query is {@link PriceSource.window}: ONE Flux query covering [min(executedAt) - lookback, max(executedAt)],
 * from whose points each lookup is answered exactly as its own per-order query would ({@link lookupEach}).
 * A failed query fails only its own lookups (each record then retries on its own). A record's `signal`
 * releases that record at once; a shared query is aborted only when every record waiting for it has gone.
 */
export class MarketPrices implements PriceLookup {
  readonly #source: PriceSource;
  readonly #batcher: Batcher<Lookup, Answer>;
  readonly #maxSpanNs: bigint;
  /** Per symbol with a query in flight: the lookups waiting for the next one. */
  readonly #lanes = new Map<string, Waiting[]>();
  /** Queries sent so far (for tests, logs and benchmarks). */
  queries = 0;

  constructor(source: PriceSource, options: MarketPricesOptions = {}) {
    this.#source = source;
    this.#maxSpanNs = BigInt(options.maxSpanMs ?? 15 * 60_000) * 1_000_000n;
    this.#batcher = new Batcher((items: Lookup[]) => this.#answer(items), { maxBatch: options.maxBatch ?? 256, maxWaitMs: options.maxWaitMs ?? 5 });
  }

  async lookup(symbol: string, executedAt: Date, signal?: AbortSignal): Promise<MarketQuote | null> {
    signal?.throwIfAborted();
    const pending = this.#batcher.load({ symbol, atNs: dateToNanos(executedAt), signal });
    const answer = signal ? await untilAborted(pending, signal) : await pending;
    if (!answer.ok) throw answer.error;
    return answer.quote;
  }

  /**
   * Answers a batch of lookups at once: grouped by symbol (one query per symbol and span, see
   * {@link planQueries}), without waiting for other lookups to join.
   */
  async lookupAll(requests: readonly PriceRequest[], signal?: AbortSignal): Promise<(MarketQuote | null | Error)[]> {
    signal?.throwIfAborted();
    const answers = await this.#answer(requests.map((r) => ({ symbol: r.symbol, atNs: dateToNanos(r.executedAt), signal })));
    return answers.map((a) => (a.ok ? a.quote : a.error instanceof Error ? a.error : new Error(String(a.error))));
  }

  async #answer(items: Lookup[]): Promise<Answer[]> {
    const bySymbol = new Map<string, IndexedLookup[]>();
    items.forEach((item, index) => {
      const list = bySymbol.get(item.symbol);
      if (list) list.push({ ...item, index });
      else bySymbol.set(item.symbol, [{ ...item, index }]);
    });
    const answers = new Array<Answer>(items.length);
    await Promise.all(
      [...bySymbol].map(async ([symbol, list]) => {
        const got = await this.#inLane(symbol, list);
        list.forEach((item, i) => (answers[item.index] = got[i]!));
      }),
    );
    return answers;
  }

  /** Runs the lookups of `symbol` now if no query of it is in flight, else with the next one. */
  #inLane(symbol: string, items: readonly Lookup[]): Promise<Answer[]> {
    const waiting = this.#lanes.get(symbol);
    if (waiting) return new Promise((resolve) => waiting.push({ items, resolve }));
    this.#lanes.set(symbol, []);
    return this.#run(items).finally(() => this.#next(symbol));
  }

  #next(symbol: string): void {
    const waiting = this.#lanes.get(symbol) ?? [];
    if (waiting.length === 0) {
      this.#lanes.delete(symbol);
      return;
    }
    this.#lanes.set(symbol, []);
    const items = waiting.flatMap((w) => w.items);
    void this.#run(items)
      .then((answers) => {
        let at = 0;
        for (const w of waiting) {
          w.resolve(answers.slice(at, at + w.items.length));
          at += w.items.length;
        }
      })
      .finally(() => this.#next(symbol));
  }

  /** Answers lookups of one symbol: one query per span of execution times. Never rejects. */
  async #run(items: readonly Lookup[]): Promise<Answer[]> {
    const answers = new Array<Answer>(items.length);
    const indexed = items.map((item, index) => ({ ...item, index }));
    await Promise.all(
      planQueries(indexed, this.#maxSpanNs).map(async (group) => {
        const first = group[0]!;
        const last = group[group.length - 1]!;
        const abort = allAborted(group.map((g) => g.signal));
        try {
          this.queries += 1;
          const points = await this.#source.window(first.symbol, first.atNs, last.atNs, abort.signal);
          const sorted = [...points].sort(compare);
          for (const g of group) answers[g.index] = { ok: true, quote: quoteAt(sorted, g.atNs, this.#source.lookbackNs) };
        } catch (error) {
          for (const g of group) answers[g.index] = { ok: false, error };
        } finally {
          abort.dispose();
        }
      }),
    );
    return answers;
  }
}
