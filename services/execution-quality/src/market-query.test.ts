import { describe, expect, it } from 'vitest';
import { lastPriceQuery, windowQuery } from './market-query.js';

const T = 1_767_225_600_000_000_000n;
const MIN = 60_000_000_000n;

describe('Flux queries', () => {
  it('asks for the last price at or before the execution, within the look-back', () => {
    expect(lastPriceQuery('md/autogen', 'ACME', T, 5n * MIN).toString()).toBe(`from(bucket: "md/autogen")
  |> range(start: time(v: "2025-12-31T23:55:00.000000000Z"), stop: time(v: "2026-01-01T00:00:00.000000001Z"))
  |> filter(fn: (r) => r._measurement == "marketdata" and r.symbol == "ACME" and r._field == "price")
  |> filter(fn: (r) => r._time <= time(v: "2026-01-01T00:00:00.000000000Z"))
  |> last()
  |> keep(columns: ["_time", "_value"])`);
  });

  it('covers a batch with one query: the last point before the first execution, then every point up to the last', () => {
    expect(windowQuery('md/autogen', 'ACME', T, T + MIN, 5n * MIN).toString()).toBe(`before = from(bucket: "md/autogen")
  |> range(start: time(v: "2025-12-31T23:55:00.000000000Z"), stop: time(v: "2026-01-01T00:00:00.000000001Z"))
  |> filter(fn: (r) => r._measurement == "marketdata" and r.symbol == "ACME" and r._field == "price")
  |> filter(fn: (r) => r._time <= time(v: "2026-01-01T00:00:00.000000000Z"))
  |> last()
after = from(bucket: "md/autogen")
  |> range(start: time(v: "2026-01-01T00:00:00.000000001Z"), stop: time(v: "2026-01-01T00:01:00.000000001Z"))
  |> filter(fn: (r) => r._measurement == "marketdata" and r.symbol == "ACME" and r._field == "price")
  |> filter(fn: (r) => r._time <= time(v: "2026-01-01T00:01:00.000000000Z"))
union(tables: [before, after])
  |> keep(columns: ["_time", "_value"])`);
    expect(windowQuery('md/autogen', 'ACME', T, T, MIN).toString()).toBe(lastPriceQuery('md/autogen', 'ACME', T, MIN).toString());
  });

  it.each([
    ['AAPL") |> drop(columns: ["_value"]', String.raw`"AAPL\") |> drop(columns: [\"_value\"]"`],
    ['x" or r.symbol != "', String.raw`"x\" or r.symbol != \""`],
    ['${bucket}', String.raw`"\${bucket}"`],
    ['back\\slash\nnewline', String.raw`"back\\slash\nnewline"`],
  ])('keeps the symbol %j one escaped string literal', (symbol, literal) => {
    const text = lastPriceQuery('md/autogen', symbol, T, MIN).toString();
    expect(text).toContain(`r.symbol == ${literal} and r._field == "price")`);
    // Apart from that literal, the query is exactly the one of a plain symbol.
    expect(text.replace(literal, '"X"')).toBe(lastPriceQuery('md/autogen', 'X', T, MIN).toString());
  });

  it('escapes the bucket too', () => {
    expect(lastPriceQuery('md") |> yield(name: "x', 'A', T, MIN).toString()).toContain(String.raw`from(bucket: "md\") |> yield(name: \"x")`);
  });
});
