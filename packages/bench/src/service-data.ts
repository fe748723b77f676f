/**
 * The records of the per-service scenarios: each service's own contract (`@stream/contracts`) plus the two
 * fields every bench record carries, `seq` (its index in the data set) and `producedAt` (stamped when it
 * is sent). The services' schemas strip unknown fields, so the consumers decode with the `Bench*` schemas
 * below, which are the contracts extended by those two fields.
 */
import { FeedActivity, Order, SearchQuery } from '@stream/contracts';
import { corpusDocument } from '@stream/search-enricher';
import { z } from 'zod';
import type { DatasetSpec, PendingRecord } from './data.js';

const Stamp = { seq: z.number().int().nonnegative(), producedAt: z.number().int().nonnegative() };
export const BenchOrder = Order.extend(Stamp);
export type BenchOrder = z.output<typeof BenchOrder>;
export const BenchFeedActivity = FeedActivity.extend(Stamp);
export type BenchFeedActivity = z.output<typeof BenchFeedActivity>;
export const BenchSearchQuery = SearchQuery.extend(Stamp);
export type BenchSearchQuery = z.output<typeof BenchSearchQuery>;

/** `seq` and `producedAt` of a decoded bench record (0 when absent, which only a foreign record is). */
export function stampOf(value: object): { seq: number; producedAt: number } {
  const v = value as { seq?: unknown; producedAt?: unknown };
  return { seq: typeof v.seq === 'number' ? v.seq : -1, producedAt: typeof v.producedAt === 'number' ? v.producedAt : 0 };
}

/** The `seq` at the end of a record id or key (`o-17` → 17), -1 when there is none. */
export function seqOfId(id: string): number {
  const match = /(\d+)$/.exec(id);
  return match ? Number(match[1]) : -1;
}

/** The market data the execution-quality scenario seeds: one point a second for 10 minutes per symbol. */
export const MARKET = { start: new Date('2026-01-01T10:00:00Z'), points: 600, stepMs: 1000, lookbackMs: 60_000, seed: 'bench' } as const;

export function marketSymbols(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `SYM${String(i).padStart(2, '0')}`);
}

/** Distinct search texts: corpus titles, tag + category, body words and unknown words. */
export const SEARCH_TEXTS = 400;
/** Products in the search index (`corpusDocument(0 … n-1)`). */
export const CORPUS_DOCS = 300;

function searchText(seq: number): string {
  const i = seq % SEARCH_TEXTS;
  const doc = corpusDocument((i * 11) % CORPUS_DOCS);
  switch (i % 4) {
    case 0:
      return doc.title;
    case 1:
      return `${doc.tags[0]} ${doc.category}`;
    case 2:
      return `unknown${i} words${i}`;
    default:
      return doc.body;
  }
}

/** Records of a service data set (`spec.kind` other than `trades`), in order; `random` is the seeded PRNG. */
export function* generateServiceRecords(spec: DatasetSpec, random: () => number): Generator<PendingRecord> {
  const keyWidth = String(Math.max(1, spec.keys - 1)).length;
  const symbols = marketSymbols(spec.symbols ?? 10);
  for (let seq = 0; seq < spec.records; seq += 1) {
    switch (spec.kind) {
      case 'orders': {
        const id = `o-${seq}`;
        // Most within the market data, some before it or long after it (no market data).
        const offsetMs = Math.floor(-30_000 + random() * (MARKET.points * MARKET.stepMs + 120_000));
        yield {
          key: id,
          value: {
            id,
            userId: `u-${Math.floor(random() * spec.keys)}`,
            symbol: symbols[Math.floor(random() * symbols.length)]!,
            side: random() < 0.5 ? 'buy' : 'sell',
            quantity: 1 + Math.floor(random() * 100),
            price: Math.round((10 + random() * 490) * 100) / 100,
            executedAt: new Date(MARKET.start.getTime() + offsetMs).toISOString(),
            seq,
          },
        };
        break;
      }
      case 'feed': {
        const user = `user-${String(Math.floor(random() * spec.keys)).padStart(keyWidth, '0')}`;
        yield {
          key: user,
          value: {
            id: `a-${seq}`,
            user,
            message: `${user} liked post ${Math.floor(random() * 1_000_000)}: ${corpusDocument(seq % CORPUS_DOCS).title}`,
            timestamp: new Date(Date.UTC(2026, 0, 1) + seq * 1000).toISOString(),
            seq,
          },
        };
        break;
      }
      case 'search': {
        const id = `q-${seq}`;
        yield {
          key: id,
          value: { id, queryString: searchText(seq), userId: `u${Math.floor(random() * spec.keys)}`, timestamp: '2026-01-01T00:00:00.000Z', seq },
        };
        break;
      }
      default:
        throw new Error(`not a service data set: ${String(spec.kind)}`);
    }
  }
}
