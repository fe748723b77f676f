/**
 * Scenario 3: a large backlog already in the topic when the consumer starts. Memory must stay bounded
 * (the runtime pauses partitions whose buffer is full) and flat over the run.
 */
import type { DatasetSpec } from '../data.js';
import { median, ratio } from '../stats.js';
import { DEFAULT_SIDE_CONFIG, runPair, summarize, transportSummaries, type Side } from './pair.js';
import type { RoundMeasurement, Scenario } from './types.js';

const BUDGET_MB = 256;
const CONCURRENCY = 64;

/** Flat: the RSS at 25/50/75/100 % progress stays within max(32 MB, 25 % of the 25 % value). */
export function isFlat(marks: readonly number[]): boolean {
  if (marks.length < 4) return false;
  const spread = Math.max(...marks) - Math.min(...marks);
  return spread <= Math.max(32, 0.25 * (marks[0] ?? 0));
}

function progress(rounds: readonly RoundMeasurement[]): number[] {
  return [0, 1, 2, 3].map((i) => median(rounds.map((r) => r.rssAtProgressMb[i] ?? Number.NaN)));
}

export const backlogMemory: Scenario = {
  name: 'backlog-memory',
  title: 'Backlog memory',
  description: '1,000,000 records waiting when the consumer starts: peak RSS and RSS over progress',
  defaultRounds: { quick: 1, full: 3 },
  async run(ctx) {
    const data: DatasetSpec = { records: ctx.quick ? 100_000 : 1_000_000, partitions: 6, keys: 10_000, seed: 3 };
    const ours: Side = {
      label: `app.agent concurrency ${CONCURRENCY}, default buffer (1,000 records / 16 MiB per partition)`,
      program: 'ours-backlog',
      config: { ...DEFAULT_SIDE_CONFIG, concurrency: CONCURRENCY },
    };
    const baseline: Side = { label: 'kafkajs eachBatch', program: 'kafkajs-backlog', config: { ...DEFAULT_SIDE_CONFIG } };
    const deadlineMs = () => Math.max(180_000, (data.records / 1_000) * 1000);
    const runs = await runPair(ctx, { scenario: 'backlog-memory', data, output: false, deadlineMs, ours, baseline, transports: true });
    const oursSummary = summarize(ours.label, runs.ours);
    const baselineSummary = summarize(baseline.label, runs.baseline);
    const oursProgress = progress(runs.ours);
    const baselineProgress = progress(runs.baseline);
    const oursMaxPeak = Math.max(...runs.ours.map((r) => r.peakRssMb));
    const flat = runs.ours.every((r) => isFlat(r.rssAtProgressMb));
    return {
      scenario: 'backlog-memory',
      title: backlogMemory.title,
      params: { ...data, recordBytes: '~220', ours: ours.config, baseline: baseline.config },
      ours: oursSummary,
      baseline: baselineSummary,
      ratio: ratio(oursSummary.peakRssMb, baselineSummary.peakRssMb),
      ratioMetric: 'peakRssMb',
      ...(runs.transports.size > 0 ? { transports: transportSummaries(runs, ours.label, 'peakRssMb', oursSummary, baselineSummary) } : {}),
      target: `peak RSS < ${BUDGET_MB} MB and flat`,
      targetMet: oursMaxPeak < BUDGET_MB && flat,
      extra: {
        oursRssAtProgressMb: { p25: oursProgress[0], p50: oursProgress[1], p75: oursProgress[2], p100: oursProgress[3] },
        baselineRssAtProgressMb: { p25: baselineProgress[0], p50: baselineProgress[1], p75: baselineProgress[2], p100: baselineProgress[3] },
        oursMaxPeakRssMb: oursMaxPeak,
        oursFlat: flat,
        baselineFlat: runs.baseline.every((r) => isFlat(r.rssAtProgressMb)),
        throughputRatio: ratio(oursSummary.recordsPerSec, baselineSummary.recordsPerSec),
      },
      violations: [],
      notes: [
        'ratio = ours / baseline peak RSS (lower is better); the target is absolute: every round of ours below the budget, and flat.',
        'Flat: RSS at 25/50/75/100 % progress within max(32 MB, 25 % of the 25 % value).',
        `The harness itself holds 9 bytes per record (latency array + seen bitmap: ${((data.records * 9) / 1048576).toFixed(0)} MB here), the same on both sides.`,
      ],
    };
  },
};
