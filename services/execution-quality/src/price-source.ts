import { InfluxDB, chunksToLinesIterable, linesToRowsIterable, type ParameterizedQuery } from '@influxdata/influxdb-client';
import { lastPriceQuery, windowQuery } from './market-query.js';
import { NS_PER_MS, parseNanos } from './time.js';

/** One market data point: time in nanoseconds since the epoch, and the price. */
export interface PricePoint {
  readonly timeNs: bigint;
  readonly price: number;
}

/** Where market prices come from. The InfluxDB implementation is below; tests wrap it to count or fail calls. */
export interface PriceSource {
  /** How far before an execution a price still counts, in nanoseconds. */
  readonly lookbackNs: bigint;
  /** The per-order query: the newest point of each series of `symbol` in [atNs - lookback, atNs]. */
  last(symbol: string, atNs: bigint, signal?: AbortSignal): Promise<PricePoint[]>;
  /** Every point that can answer a lookup of `symbol` at any time in [firstNs, lastNs] (see {@link windowQuery}). */
  window(symbol: string, firstNs: bigint, lastNs: bigint, signal?: AbortSignal): Promise<PricePoint[]>;
}

export interface InfluxPriceSourceOptions {
  readonly url: string;
  readonly token: string;
  readonly org: string;
  /** `database/retention-policy` on InfluxDB 1.8 (`mydb/autogen`), a bucket name on 2.x. */
  readonly bucket: string;
  readonly lookbackMs: number;
  /** Longest a query may take, connection included, before it is aborted. */
  readonly timeoutMs: number;
}

/** Thrown when a query does not finish within the configured time. Retryable: the agent retries the record. */
export class MarketDataTimeoutError extends Error {
  override readonly name = 'MarketDataTimeoutError';
}

/** The request body the client's QueryApi sends: annotated CSV with every annotation. */
const DIALECT = { header: true, delimiter: ',', quoteChar: '"', commentPrefix: '#', annotations: ['datatype', 'group', 'default'] };

/**
 * Reads `marketdata.price` from InfluxDB with Flux over the v2 API (`/api/v2/query`, which InfluxDB 1.8
 * serves when `flux-enabled = true`).
 *
 * The client's `QueryApi` takes no AbortSignal, but its transport does (`SendOptions.signal`, passed on to
 * `http.request`). Queries therefore go through the client's public `transport.iterate()` with the same
 * request body QueryApi sends, and the rows are decoded by the client's own `chunksToLinesIterable` /
 * `linesToRowsIterable`. The signal is the caller's (the records' `ctx.signal`) combined with a timeout,
 * so an abandoned or hung query closes its socket instead of lingering.
 */
export class InfluxPriceSource implements PriceSource {
  readonly lookbackNs: bigint;
  readonly #client: InfluxDB;
  readonly #path: string;
  readonly #bucket: string;
  readonly #timeoutMs: number;

  constructor(options: InfluxPriceSourceOptions) {
    this.#client = new InfluxDB({ url: options.url, token: options.token, timeout: options.timeoutMs });
    this.#path = `/api/v2/query?org=${encodeURIComponent(options.org)}`;
    this.#bucket = options.bucket;
    this.#timeoutMs = options.timeoutMs;
    this.lookbackNs = BigInt(options.lookbackMs) * NS_PER_MS;
  }

  last(symbol: string, atNs: bigint, signal?: AbortSignal): Promise<PricePoint[]> {
    return this.query(lastPriceQuery(this.#bucket, symbol, atNs, this.lookbackNs), signal);
  }

  window(symbol: string, firstNs: bigint, lastNs: bigint, signal?: AbortSignal): Promise<PricePoint[]> {
    return this.query(windowQuery(this.#bucket, symbol, firstNs, lastNs, this.lookbackNs), signal);
  }

  /** Runs a query returning `_time` and `_value` columns. */
  async query(query: ParameterizedQuery, signal?: AbortSignal): Promise<PricePoint[]> {
    signal?.throwIfAborted();
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    const body = JSON.stringify({ query: query.toString(), dialect: DIALECT, type: 'flux' });
    const headers = { 'content-type': 'application/json; encoding=utf-8', 'accept-encoding': 'identity' };
    const points: PricePoint[] = [];
    try {
      const chunks = this.#client.transport.iterate(this.#path, body, { method: 'POST', headers, signal: combined });
      for await (const { values, tableMeta } of linesToRowsIterable(chunksToLinesIterable(chunks))) {
        const time = values[tableMeta.column('_time').index];
        const price = Number(values[tableMeta.column('_value').index]);
        if (time) points.push({ timeNs: parseNanos(time), price });
      }
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (timeout.aborted) throw new MarketDataTimeoutError(`InfluxDB query did not finish within ${this.#timeoutMs} ms`, { cause: error });
      throw error;
    }
    return points;
  }
}

/** Readiness: InfluxDB's `/ping` answers 204 (1.8) or 200/204 (2.x) when it serves requests. */
export async function influxPing(url: string, timeoutMs = 2000): Promise<boolean> {
  try {
    const res = await fetch(new URL('ping', url.endsWith('/') ? url : `${url}/`), { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}
