/**
 * What the table scenarios (table-updates, table-restore) and their consumers share: the README's counting
 * table, and the counts and changelog entries a data set leaves in it. (The runner's side, producing and
 * reading changelogs, is in table-changelog.ts: the consumers do not load the runner's Kafka chores.)
 */
import type { App } from '@stream/core';
import { z } from 'zod';
import { generate, type DatasetSpec } from './data.js';

/** The table's name: its changelog is `<appId>-counts-changelog`. */
export const COUNTS_TABLE = 'counts';

/** The counting table of packages/core's README: records per key. */
export function countsTable(app: App) {
  return app.table(COUNTS_TABLE, { key: z.string(), value: z.number().int().nonnegative(), default: 0 });
}

/** One changelog entry of the counting table: the key's count after the record `source`. */
export interface CountEntry {
  readonly key: string;
  readonly value: number;
  readonly source: number;
}

/** The changelog the counting table writes over the data set, in order: one entry per record. */
export function* countEntries(spec: DatasetSpec): Generator<CountEntry> {
  const counts = new Map<string, number>();
  for (const record of generate(spec)) {
    const value = (counts.get(record.key) ?? 0) + 1;
    counts.set(record.key, value);
    yield { key: record.key, value, source: record.value.seq };
  }
}

/** The table's final state after the data set: records per key. */
export function keyCounts(spec: DatasetSpec): Map<string, number> {
  const counts = new Map<string, number>();
  for (const entry of countEntries(spec)) counts.set(entry.key, entry.value);
  return counts;
}

/** How `actual` counts differ from `expected` (empty when equal), with a few examples. */
export function countDifferences(actual: ReadonlyMap<string, number>, expected: ReadonlyMap<string, number>): string[] {
  const wrong: string[] = [];
  for (const [key, count] of expected) {
    const got = actual.get(key);
    if (got !== count) wrong.push(`${key}: ${got ?? 'missing'} instead of ${count}`);
  }
  for (const key of actual.keys()) if (!expected.has(key)) wrong.push(`${key}: not in the input`);
  if (wrong.length === 0) return [];
  return [`${wrong.length} of ${expected.size} keys wrong (${wrong.slice(0, 3).join(', ')}${wrong.length > 3 ? ', …' : ''})`];
}
