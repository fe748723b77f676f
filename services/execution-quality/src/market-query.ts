import { flux, fluxDateTime, type ParameterizedQuery } from '@influxdata/influxdb-client';
import { formatNanos } from './time.js';

/**
 * The Flux queries of the service. Every value (bucket, symbol, times) goes through the client's `flux`
 * tagged template, which turns it into an escaped Flux literal: a symbol is always a string literal, so
 * `AAPL") |> drop(columns: ["_value"]` is just a symbol nobody trades. Nothing here concatenates strings.
 *
 * Time bounds: Flux documents `range(stop:)` as exclusive, yet InfluxDB 1.8.10 (Flux 0.65) returns a point
 * lying exactly on `stop`. The queries therefore ask for `stop: t + 1ns` and then keep `_time <= t`, which
 * means "at or before t" whichever way the server reads `stop`. `start` is inclusive everywhere.
 */

const at = (ns: bigint) => fluxDateTime(formatNanos(ns));

/** The price points of one symbol with `fromNs <= _time <= toNs` (one table per series). */
function prices(bucket: string, symbol: string, fromNs: bigint, toNs: bigint): ParameterizedQuery {
  return flux`from(bucket: ${bucket})
  |> range(start: ${at(fromNs)}, stop: ${at(toNs + 1n)})
  |> filter(fn: (r) => r._measurement == "marketdata" and r.symbol == ${symbol} and r._field == "price")
  |> filter(fn: (r) => r._time <= ${at(toNs)})`;
}

/**
 * The per-order query: the last price of `symbol` at or before `atNs`, no older than `lookbackNs`.
 * One row per series of the symbol (normally one).
 */
export function lastPriceQuery(bucket: string, symbol: string, atNs: bigint, lookbackNs: bigint): ParameterizedQuery {
  return flux`${prices(bucket, symbol, atNs - lookbackNs, atNs)}
  |> last()
  |> keep(columns: ["_time", "_value"])`;
}

/**
 * The batch query: every point that can be the answer for an order of `symbol` executed at any time in
 * [firstNs, lastNs]. That is the last point of [firstNs - lookback, firstNs] (per series) plus every point
 * of (firstNs, lastNs] — what the per-order queries would have read, without the look-back window
 * repeated for each order. With firstNs == lastNs it is the per-order query.
 */
export function windowQuery(bucket: string, symbol: string, firstNs: bigint, lastNs: bigint, lookbackNs: bigint): ParameterizedQuery {
  if (lastNs <= firstNs) return lastPriceQuery(bucket, symbol, firstNs, lookbackNs);
  return flux`before = ${prices(bucket, symbol, firstNs - lookbackNs, firstNs)}
  |> last()
after = ${prices(bucket, symbol, firstNs + 1n, lastNs)}
union(tables: [before, after])
  |> keep(columns: ["_time", "_value"])`;
}
