/**
 * The benchmark records: one zod schema shared by ours and the baselines, and a seeded generator, so
 * every run of a scenario consumes the very same records (only `producedAt`, the produce timestamp the
 * latency is measured from, differs between runs).
 */
import { z } from 'zod';
import { generateServiceRecords } from './service-data.js';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

/** An input record, ~200 bytes of JSON. */
export const Trade = z.object({
  id: z.string().min(1),
  seq: z.number().int().nonnegative(),
  key: z.string().min(1),
  symbol: z.string().min(1).max(8),
  side: z.enum(['buy', 'sell']),
  quantity: z.number().int().positive(),
  price: z.number().positive(),
  venue: z.string(),
  account: z.string(),
  strategy: z.string(),
  note: z.string().max(200),
  /** Epoch milliseconds at which the record was sent to Kafka: the start of its end-to-end latency. */
  producedAt: z.number().int().nonnegative(),
});
export type Trade = z.infer<typeof Trade>;

/** What the passthrough scenarios write to their output topic. */
export const Enriched = z.object({
  id: z.string(),
  seq: z.number().int().nonnegative(),
  key: z.string(),
  symbol: z.string(),
  side: z.enum(['buy', 'sell']),
  notional: z.number().nonnegative(),
  venue: z.string(),
  producedAt: z.number().int().nonnegative(),
});
export type Enriched = z.infer<typeof Enriched>;

/** The per-record work of the passthrough scenarios (identical in ours and the baseline). */
export function enrich(t: Trade): Enriched {
  return {
    id: t.id,
    seq: t.seq,
    key: t.key,
    symbol: t.symbol,
    side: t.side,
    notional: Math.round(t.quantity * t.price * 100) / 100,
    venue: t.venue,
    producedAt: t.producedAt,
  };
}

/** What a data set is made of. Same spec, same records. */
export interface DatasetSpec {
  readonly records: number;
  readonly partitions: number;
  /** Distinct keys (users for `feed`), chosen pseudo-randomly per record. */
  readonly keys: number;
  readonly seed: number;
  /**
   * What the records are: {@link Trade}s (default), or a service's records (see service-data.ts): `orders`
   * (order-emailer, execution-quality), `feed` (feed-cache activities), `search` (search-enricher queries).
   */
  readonly kind?: 'trades' | 'orders' | 'feed' | 'search';
  /** Symbols the `orders` are spread over (default 10). */
  readonly symbols?: number;
}

/** A seeded PRNG in [0, 1) (xoroshiro128+): data that looks varied and is identical between runs. */
function prng(seed: number): () => number {
  const rng = xoroshiro128plus(seed | 0);
  return () => uniformFloat64(rng);
}

const SYMBOLS = ['AAPL', 'MSFT', 'GOOG', 'AMZN', 'NVDA', 'META', 'TSLA', 'ASML', 'SAP', 'NESN', 'BRK.B', 'JPM'];
const VENUES = ['XNAS', 'XNYS', 'XETR', 'XLON', 'XPAR', 'BATS'];
const STRATEGIES = ['twap', 'vwap', 'pov', 'iceberg', 'limit', 'market'];
const NOTES = ['via FIX gateway', 'basket rebalance leg', 'option expiry hedge', 'algo child order'];

/** A record of the data set, without its produce timestamp (stamped when it is sent). */
export interface PendingRecord {
  readonly key: string;
  /** A JSON object with a numeric `seq`; `producedAt` is appended when it is sent. */
  readonly value: Readonly<Record<string, unknown>> & { readonly seq: number };
}

/**
 * The records of `spec`, in order. `seq` is the record's index: with one partition it is also its offset
 * order, which the per-key order check relies on.
 */
export function* generate(spec: DatasetSpec): Generator<PendingRecord> {
  const random = prng(spec.seed);
  if (spec.kind !== undefined && spec.kind !== 'trades') {
    yield* generateServiceRecords(spec, random);
    return;
  }
  const keyWidth = String(Math.max(1, spec.keys - 1)).length;
  for (let seq = 0; seq < spec.records; seq += 1) {
    const key = `acct-${String(Math.floor(random() * spec.keys)).padStart(keyWidth, '0')}`;
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
    yield {
      key,
      value: {
        id: `T${String(seq).padStart(9, '0')}`,
        seq,
        key,
        symbol: pick(SYMBOLS),
        side: random() < 0.5 ? 'buy' : 'sell',
        quantity: 1 + Math.floor(random() * 5000),
        price: Math.round((5 + random() * 995) * 100) / 100,
        venue: pick(VENUES),
        account: `ACC-${String(Math.floor(random() * 100_000)).padStart(5, '0')}`,
        strategy: pick(STRATEGIES),
        note: pick(NOTES),
      },
    };
  }
}

/** Bump when the generator changes, so cached data files are regenerated (2: pure-rand xoroshiro128+). */
const GENERATOR_VERSION = 2;

/** A file name that identifies the data set (for the cached file the Java producer reads). */
export function datasetId(spec: DatasetSpec): string {
  const kind = spec.kind === undefined || spec.kind === 'trades' ? '' : `-${spec.kind}${spec.symbols === undefined ? '' : `-y${spec.symbols}`}`;
  return `v${GENERATOR_VERSION}-n${spec.records}-p${spec.partitions}-k${spec.keys}-s${spec.seed}${kind}`;
}
