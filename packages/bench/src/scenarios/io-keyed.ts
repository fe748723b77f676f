/**
 * Scenario 2: I/O-bound handlers on ONE partition, many keys. Our key-ordered concurrency runs different
 * keys at once while each key stays in order; kafkajs eachMessage runs the partition sequentially.
 */
import type { DatasetSpec } from '../data.js';
import { ratio } from '../stats.js';
import { DEFAULT_SIDE_CONFIG, runPair, summarize, transportSummaries, type Side } from './pair.js';
import type { Scenario } from './types.js';

const IO_DELAY_MS = 5;
const CONCURRENCY = 64;
const TARGET = 50;

export const ioKeyed: Scenario = {
  name: 'io-keyed',
  title: 'I/O-bound, key-ordered (1 partition)',
  description: `5 ms simulated I/O per record, 1 partition, key-ordered concurrency ${CONCURRENCY} vs kafkajs eachMessage`,
  // The sequential baseline needs ~2 minutes per round at full size.
  defaultRounds: { quick: 1, full: 2 },
  async run(ctx) {
    const data: DatasetSpec = ctx.quick ? { records: 2_000, partitions: 1, keys: 200, seed: 2 } : { records: 20_000, partitions: 1, keys: 2_000, seed: 2 };
    const ours: Side = {
      label: `app.agent concurrency ${CONCURRENCY}, ordering key`,
      program: 'ours-io-keyed',
      config: { ...DEFAULT_SIDE_CONFIG, concurrency: CONCURRENCY, ioDelayMs: IO_DELAY_MS, trackOrder: true },
    };
    const baseline: Side = {
      label: 'kafkajs eachMessage (sequential per partition)',
      program: 'kafkajs-io-keyed',
      config: { ...DEFAULT_SIDE_CONFIG, ioDelayMs: IO_DELAY_MS, trackOrder: true },
    };
    // Sequential: ~(5 ms + timer slack) per record, so allow 3× that.
    const deadlineMs = () => Math.max(120_000, data.records * IO_DELAY_MS * 3);
    const runs = await runPair(ctx, { scenario: 'io-keyed', data, output: false, deadlineMs, ours, baseline, transports: true });
    const oursSummary = summarize(ours.label, runs.ours);
    const baselineSummary = summarize(baseline.label, runs.baseline);
    const sides: [string, typeof runs.ours][] = [
      ['ours', runs.ours],
      ['baseline', runs.baseline],
      ...[...runs.transports].map(([t, r]): [string, typeof r] => [`ours on ${t}`, r]),
    ];
    const violations = sides.flatMap(([side, rounds]) =>
      rounds.filter((r) => (r.orderViolations ?? 0) > 0).map((r) => `${side} r${r.round}: ${r.orderViolations} records of a key handled after a later one`),
    );
    const transports = transportSummaries(runs, ours.label, 'recordsPerSec', oursSummary, baselineSummary);
    const orderIntact = violations.length === 0;
    const r = ratio(oursSummary.recordsPerSec, baselineSummary.recordsPerSec);
    return {
      scenario: 'io-keyed',
      title: ioKeyed.title,
      params: { ...data, ioDelayMs: IO_DELAY_MS, ours: ours.config, baseline: baseline.config },
      ours: oursSummary,
      baseline: baselineSummary,
      ratio: r,
      ratioMetric: 'recordsPerSec',
      ...(transports.length > 0 ? { transports } : {}),
      target: `≥ ${TARGET}× sequential records/s, order intact`,
      targetMet: r >= TARGET && orderIntact,
      extra: {
        orderIntact,
        idealRatio: CONCURRENCY,
        note: `the ideal is ${CONCURRENCY}× (concurrency) when no two of ${CONCURRENCY} consecutive records share a key and nothing but the I/O costs time`,
      },
      violations,
      notes: [
        'Order check: per key, the seq of each handled record must be higher than the previous one of that key (seq follows the offset order on the one partition).',
        `Simulated I/O: await setTimeout(${IO_DELAY_MS} ms) per record (timers fire ≥ 5 ms, ~1 ms later on a busy machine).`,
      ],
    };
  },
};
