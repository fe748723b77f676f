/**
 * The common shape of a scenario: ours and its baseline run alternately (ours, baseline, ours, baseline…)
 * for N rounds, each run on fresh topics holding the same records, each consumer in a fresh child process.
 */
import { loadavg } from 'node:os';
import path from 'node:path';
import { runChild, type ConsumerProgram } from '../child.js';
import { coreBuild } from '../core-build.js';
import type { DatasetSpec } from '../data.js';
import { cleanupRun, countOutput, createFreshTopics, runNames, type OutputCount, type RunTopics } from '../kafka.js';
import type { ConsumerConfig, ConsumerResult } from '../protocol.js';
import { median, ratio } from '../stats.js';
import type { RoundMeasurement, ScenarioContext, SideSummary, TransportSummary } from './types.js';

/** One side of a pair. */
export interface Side {
  readonly label: string;
  readonly program: ConsumerProgram;
  readonly config: Pick<ConsumerConfig, 'mode' | 'concurrency' | 'ioDelayMs' | 'trackOrder' | 'take' | 'partitionsConsumedConcurrently'>;
}

/** What a scenario sets up for one run (`PairOptions.perRun`). */
export interface RunSetup {
  /** Passed to the child as `ConsumerConfig.service`. */
  readonly service: Readonly<Record<string, string | number>>;
  /** After the run: the correctness violations found (empty when none). */
  check?(): Promise<string[]>;
  /** After the run (and the check), whatever happened: delete what the run wrote. */
  cleanup?(): Promise<void>;
}

export interface PairOptions {
  readonly scenario: string;
  readonly data: DatasetSpec;
  /** Create an output topic (with the input's partition count) and read it back after each run. */
  readonly output: boolean;
  /** Per-run deadline of the consumer child. */
  readonly deadlineMs: (side: 'ours' | 'baseline') => number;
  readonly ours: Side;
  readonly baseline: Side;
  /**
   * A third side run in the same alternation (ours, baseline, also, ours…), on the same data: e.g. the
   * tuned agent beside an agent with default options.
   */
  readonly also?: Side;
  /**
   * Run ours again on each of `ctx.otherTransports` in the same alternation and on the same data (the core
   * scenarios; the per-service ones, whose set-up is per side, leave it off).
   */
  readonly transports?: boolean;
  /**
   * Per-run set-up of the per-service scenarios (unique keys, a fresh email sink…) and of the sides whose
   * run leaves something to check (a table's changelog): the run's topics and group are `names`.
   */
  readonly perRun?: (which: PerRunSide, round: number, names: RunTopics) => Promise<RunSetup>;
}

/**
 * Diagnostics only: `STREAM_BENCH_OUTPUT_MAX_MESSAGE_BYTES=<n>` creates output topics with
 * `max.message.bytes=<n>` (the broker default is ~1 MB). The reported runs leave it unset.
 */
function outputTopicConfig(): { config?: Record<string, string> } {
  const n = Number(process.env.STREAM_BENCH_OUTPUT_MAX_MESSAGE_BYTES);
  return Number.isInteger(n) && n > 0 ? { config: { 'max.message.bytes': String(n) } } : {};
}

/** Default knobs of a side's config. */
export const DEFAULT_SIDE_CONFIG: Side['config'] = {
  mode: 'agent',
  concurrency: 1,
  ioDelayMs: 0,
  trackOrder: false,
  take: { size: 500, withinMs: 20 },
  partitionsConsumedConcurrently: 1,
};

type Which = PerRunSide | `ours-${string}`;

/** The sides that get a {@link PairOptions.perRun} set-up (not ours on the other transports). */
export type PerRunSide = 'ours' | 'baseline' | 'also';

async function runOnce(ctx: ScenarioContext, options: PairOptions, which: Which, round: number, transport?: 'platformatic'): Promise<RoundMeasurement> {
  const side = which === 'also' ? options.also! : which === 'baseline' ? options.baseline : options.ours;
  const names = runNames(options.scenario, which, round, options.output);
  let setup: RunSetup | undefined;
  try {
    setup = options.perRun && (which === 'ours' || which === 'baseline' || which === 'also') ? await options.perRun(which, round, names) : undefined;
    await createFreshTopics([
      { name: names.input, partitions: options.data.partitions },
      ...(names.output ? [{ name: names.output, partitions: options.data.partitions, ...outputTopicConfig() }] : []),
    ]);
    await ctx.produce(names.input, options.data);
    const config: ConsumerConfig = {
      ...side.config,
      ...(transport ? { transport } : {}),
      scenario: options.scenario,
      side: which,
      brokers: ctx.brokers,
      input: names.input,
      ...(names.output ? { output: names.output } : {}),
      groupId: names.groupId,
      expected: options.data.records,
      deadlineMs: options.deadlineMs(which === 'baseline' ? 'baseline' : 'ours'),
      ...(setup ? { service: setup.service } : {}),
    };
    return await measureRun(ctx, { scenario: options.scenario, which, round, program: side.program, config }, async () => ({
      output: names.output ? await countOutput(names.output, options.data.records) : undefined,
      checks: setup?.check ? await setup.check() : [],
    }));
  } finally {
    await cleanupRun(names);
    await setup?.cleanup?.().catch((error: unknown) => ctx.log(`  cleanup of ${which} r${round} failed: ${String(error)}`));
  }
}

/** One side's run on prepared topics: its consumer program and config. */
export interface MeasuredRun {
  readonly scenario: string;
  readonly which: string;
  readonly round: number;
  readonly program: ConsumerProgram;
  readonly config: ConsumerConfig;
}

/**
 * Runs one side's consumer child, then `after` (what the run is checked by: its output read back, the
 * scenario's own checks, the child's own findings in its result), and logs the line of the run.
 */
export async function measureRun(
  ctx: ScenarioContext,
  run: MeasuredRun,
  after: (result: ConsumerResult) => Promise<{ readonly output?: OutputCount | undefined; readonly checks: readonly string[] }> = () =>
    Promise.resolve({ checks: [] }),
): Promise<RoundMeasurement> {
  const { which, round } = run;
  const loadAvg1 = loadavg()[0] ?? Number.NaN;
  const runName = `${run.scenario}-${which}-r${round}`;
  const build = coreBuild();
  const result = await runChild(run.program, run.config, {
    logFile: path.join(ctx.logDir, `${runName}.log`),
    profileDir: ctx.profileDir,
    profileName: `${runName}.cpuprofile`,
  });
  const { output, checks } = await after(result);
  const measurement: RoundMeasurement = {
    ...result,
    round,
    loadAvg1,
    coreBuild: build,
    ...(checks.length > 0 ? { checks } : {}),
    ...(output ? { output: { distinct: output.distinct, duplicates: output.duplicates, missing: output.missing } } : {}),
  };
  const expected = run.config.expected;
  ctx.log(
    `  ${which.padEnd(8)} r${round}: ${Math.round(result.recordsPerSec).toLocaleString('en-US')} rec/s` +
      // Records counted in bulk (a restore's entries) have no latency.
      (Number.isFinite(result.p50Ms) ? `, p50 ${Math.round(result.p50Ms)} ms, p99 ${Math.round(result.p99Ms)} ms` : `, ${Math.round(result.durationMs)} ms`) +
      `, peak RSS ${Math.round(result.peakRssMb)} MB, ${result.cpuMsPer1kRecords.toFixed(1)} CPU ms/1k rec` +
      (result.diagnostics.batchesFetched ? `, ${Math.round(result.handled / result.diagnostics.batchesFetched)} rec/fetched batch` : '') +
      (output ? `, output ${output.distinct}/${expected}${output.duplicates > 0 ? ` (+${output.duplicates} dup)` : ''}` : '') +
      (result.orderViolations !== null ? `, order violations ${result.orderViolations}` : '') +
      (checks.length > 0 ? `, CHECK FAILED: ${checks.join('; ')}` : '') +
      ` (load ${loadAvg1.toFixed(1)})`,
  );
  return measurement;
}

/** Runs the pair alternately for `ctx.rounds` rounds. */
export async function runPair(ctx: ScenarioContext, options: PairOptions): Promise<PairRuns> {
  const ours: RoundMeasurement[] = [];
  const baseline: RoundMeasurement[] = [];
  const also: RoundMeasurement[] = [];
  const transports = new Map<string, RoundMeasurement[]>();
  const others = options.transports ? ctx.otherTransports : [];
  for (const t of others) transports.set(t, []);
  for (let round = 1; round <= ctx.rounds; round += 1) {
    ours.push(await runOnce(ctx, options, 'ours', round));
    baseline.push(await runOnce(ctx, options, 'baseline', round));
    if (options.also) also.push(await runOnce(ctx, options, 'also', round));
    for (const t of others) transports.get(t)!.push(await runOnce(ctx, options, `ours-${t}`, round, t));
  }
  return { ours, baseline, also, transports };
}

/** What {@link runPair} measured, by side; `transports` holds ours on each other Kafka client. */
export interface PairRuns {
  readonly ours: RoundMeasurement[];
  readonly baseline: RoundMeasurement[];
  readonly also: RoundMeasurement[];
  readonly transports: ReadonlyMap<string, RoundMeasurement[]>;
}

/**
 * Ours on the other Kafka clients against the scenario's baseline and ours on kafkajs, of `metric`, with
 * the correctness checks of `violations` applied to their rounds.
 */
export function transportSummaries(
  runs: PairRuns,
  label: string,
  metric: 'recordsPerSec' | 'peakRssMb',
  ours: SideSummary,
  baseline: SideSummary,
  ceilingRecordsPerSec?: number,
): TransportSummary[] {
  return [...runs.transports].map(([transport, rounds]) => {
    const summary = summarize(`${label}, on ${transport}`, rounds);
    return {
      transport,
      ours: summary,
      ratio: ratio(summary[metric], baseline[metric]),
      overKafkajs: ratio(summary[metric], ours[metric]),
      ...(ceilingRecordsPerSec ? { overCeiling: ratio(summary.recordsPerSec, ceilingRecordsPerSec) } : {}),
    };
  });
}

/** {@link outputViolations} of every other transport's rounds. */
export function transportOutputViolations(runs: PairRuns, exactlyOnce: boolean): string[] {
  return [...runs.transports].flatMap(([t, rounds]) => outputViolations(`ours on ${t}`, rounds, exactlyOnce));
}

/** Medians of a side's rounds. */
export function summarize(label: string, rounds: readonly RoundMeasurement[]): SideSummary {
  return {
    label,
    recordsPerSec: median(rounds.map((r) => r.recordsPerSec)),
    p50Ms: median(rounds.map((r) => r.p50Ms)),
    p99Ms: median(rounds.map((r) => r.p99Ms)),
    peakRssMb: median(rounds.map((r) => r.peakRssMb)),
    cpuMsPer1kRecords: median(rounds.map((r) => r.cpuMsPer1kRecords)),
    rounds,
  };
}

/** The violations the scenario's own per-run checks found. */
export function checkViolations(which: string, rounds: readonly RoundMeasurement[]): string[] {
  return rounds.flatMap((r) => (r.checks ?? []).map((c) => `${which} r${r.round}: ${c}`));
}

/** Lost or duplicated output, the correctness checks every producing scenario shares. */
export function outputViolations(which: string, rounds: readonly RoundMeasurement[], exactlyOnce: boolean): string[] {
  const out: string[] = [];
  for (const r of rounds) {
    if (r.output && r.output.missing > 0) out.push(`${which} r${r.round}: ${r.output.missing} records missing from the output topic`);
    if (exactlyOnce && r.output && r.output.duplicates > 0) out.push(`${which} r${r.round}: ${r.output.duplicates} duplicate outputs under exactly-once`);
  }
  return out;
}
