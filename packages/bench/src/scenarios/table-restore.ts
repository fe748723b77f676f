/**
 * Tables, restore: the counting table's changelog holds N entries (1,000,000 in the full run: issue #18's
 * restore-time test, measured, not timed against a limit; 100,000 with --quick) over 10,000 keys on 6
 * partitions, written once by the runner. Ours is an app with that table starting over an empty topic:
 * from `app.start()` until `app.ready` (no partition restoring), entries/s. The baseline is a plain kafkajs
 * consumer reading the same changelog from the beginning to its end offsets: what a restore cannot beat.
 * After each of ours, a probe per key checks the table restored every key's last count.
 */
import { changelogTopicName } from '@stream/core';
import { deleteTopics, uniqueName } from '@stream/local-stack';
import type { DatasetSpec } from '../data.js';
import { cleanupRun, createFreshTopics, deleteGroups, runNames } from '../kafka.js';
import type { ConsumerConfig, ConsumerResult } from '../protocol.js';
import { median, ratio } from '../stats.js';
import { produceCountEntries } from '../table-changelog.js';
import { COUNTS_TABLE } from '../tables.js';
import { DEFAULT_SIDE_CONFIG, checkViolations, measureRun, summarize } from './pair.js';
import type { RoundMeasurement, Scenario, ScenarioContext } from './types.js';

/**
 * The table's stores measured, each a side of ours run in every round (the first one is the scenario's
 * `ours`, the others go to `extra`): the in-memory store restores the whole changelog; the persistent one
 * (LMDB, `stateDir`) is measured on a restart after a clean stop, so it loads its local store and reads the
 * changelog from its checkpoint (see consumers/ours-table-restore.ts).
 */
const STORES: readonly { readonly store: 'memory' | 'persistent'; readonly label: string }[] = [
  { store: 'memory', label: 'app with the counting table (in-memory store), start until ready' },
  { store: 'persistent', label: 'app with the counting table (persistent store), restart until ready' },
];
const BASELINE_LABEL = 'kafkajs consumer reading the changelog to its end offsets (no decoding)';
/** Provisional (issue #18 sets none). Never fails the run. */
const TARGET = 0.5;

/**
 * Every in-memory restore read every entry, a persistent restart after a clean stop none (its checkpoint is
 * the changelog's end); either way every key holds its last count. The baseline read every entry.
 */
function restoreChecks(result: ConsumerResult, entries: number, store: 'memory' | 'persistent'): string[] {
  const d = result.diagnostics;
  const checks: string[] = [];
  const wanted = store === 'memory' ? entries : 0;
  if (d.restoredEntries !== wanted) checks.push(`${store} store: read ${d.restoredEntries} changelog entries, expected ${wanted} of ${entries}`);
  if ((d.probesWrong ?? 0) > 0) checks.push(`${d.probesWrong} of ${d.probes} keys restored with another count than their last`);
  if ((d.probesMissing ?? 0) > 0) checks.push(`${d.probesMissing} of ${d.probes} probes not handled`);
  return checks;
}

function readChecks(result: ConsumerResult, entries: number): string[] {
  return result.distinct === entries ? [] : [`read ${result.distinct} of ${entries} changelog entries`];
}

/** A side's median of one of its diagnostics. */
function medianOf(rounds: readonly RoundMeasurement[], name: string): number {
  return Math.round(median(rounds.map((r) => r.diagnostics[name] ?? Number.NaN)));
}

export const tableRestore: Scenario = {
  name: 'table-restore',
  title: 'Tables: restore entries/s',
  description: 'app start until ready, restoring a counting table from a changelog of 1,000,000 entries, vs a plain kafkajs read of it',
  defaultRounds: { quick: 1, full: 3 },
  async run(ctx) {
    const data: DatasetSpec = { records: ctx.quick ? 100_000 : 1_000_000, partitions: 6, keys: 10_000, seed: 5 };
    // The app id names the changelog (`<appId>-counts-changelog`): every run of ours uses this app id, so
    // all of them and the baseline read the one changelog written here.
    const appId = uniqueName('bench-table-restore');
    const changelog = changelogTopicName(appId, COUNTS_TABLE);
    // Compacted like the runtime's, but the cleaner must leave all N entries for the whole measurement.
    await createFreshTopics([{ name: changelog, partitions: data.partitions, config: { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '86400000' } }]);
    try {
      const filled = await produceCountEntries(changelog, data);
      ctx.log(`  changelog ${changelog}: ${filled.records.toLocaleString('en-US')} entries in ${(filled.ms / 1000).toFixed(1)} s`);
      // ~2,000 entries/s at worst.
      const deadlineMs = Math.max(120_000, (data.records / 2_000) * 1000);
      const common = { ...DEFAULT_SIDE_CONFIG, scenario: 'table-restore', brokers: ctx.brokers, expected: data.records, deadlineMs };
      const ours = STORES.map(() => [] as RoundMeasurement[]);
      const baseline: RoundMeasurement[] = [];
      for (let round = 1; round <= ctx.rounds; round += 1) {
        for (const [i, { store }] of STORES.entries()) ours[i]!.push(await runOurs(ctx, common, appId, data, store, round));
        const groupId = uniqueName(`bench-table-restore-baseline-r${round}-group`);
        const config: ConsumerConfig = { ...common, mode: 'read', side: 'baseline', input: changelog, groupId };
        try {
          baseline.push(
            await measureRun(ctx, { scenario: 'table-restore', which: 'baseline', round, program: 'kafkajs-changelog-read', config }, (r) =>
              Promise.resolve({ checks: readChecks(r, filled.records) }),
            ),
          );
        } finally {
          await deleteGroups([groupId]);
        }
      }
      const oursSummary = summarize(STORES[0]!.label, ours[0]!);
      const baselineSummary = summarize(BASELINE_LABEL, baseline);
      const r = ratio(oursSummary.recordsPerSec, baselineSummary.recordsPerSec);
      return {
        scenario: 'table-restore',
        title: tableRestore.title,
        params: { ...data, table: COUNTS_TABLE, stores: STORES.map((s) => s.store) },
        ours: oursSummary,
        baseline: baselineSummary,
        ratio: r,
        ratioMetric: 'recordsPerSec',
        target: `≥ ${TARGET}× a plain kafkajs read of the changelog, entries/s (provisional)`,
        targetMet: r >= TARGET,
        extra: {
          entries: data.records,
          restoreTimeMs: medianOf(ours[0]!, 'readyMs'),
          restorePhaseMs: medianOf(ours[0]!, 'restorePhaseMs'),
          baselineReadMs: medianOf(baseline, 'readyMs'),
          entriesRestored: ours[0]!.map((m) => m.diagnostics.restoredEntries),
          keysProbed: ours[0]!.map((m) => m.diagnostics.probes),
          // The other stores' medians: each beside the in-memory one, same rounds, same changelog.
          otherStores: STORES.slice(1).map(({ store }, i) => {
            const side = summarize(store, ours[i + 1]!);
            return {
              store,
              entriesPerSec: Math.round(side.recordsPerSec),
              readyMs: medianOf(ours[i + 1]!, 'readyMs'),
              overBaseline: ratio(side.recordsPerSec, baselineSummary.recordsPerSec),
              peakRssMb: Math.round(side.peakRssMb),
              overMemory: ratio(side.recordsPerSec, oursSummary.recordsPerSec),
            };
          }),
        },
        violations: [...STORES.flatMap(({ store }, i) => checkViolations(`ours (${store})`, ours[i]!)), ...checkViolations('baseline', baseline)],
        notes: [
          'rec/s here are changelog entries per second: entries / (start until ready), both sides timed from before connecting (ours: `app.start()`; the baseline: its admin and consumer connect) to the end.',
          'restoreTimeMs: median start until `app.ready`; restorePhaseMs: from the first partition starting its restore until ready; baselineReadMs: the baseline from connecting to the last partition read.',
          "Check (untimed, after ready): a probe record per key, whose handler reads the table: every key must hold its last count; and every entry restored (counted through the instrumentation's `restoring`, as the metric stream_table_restored_entries).",
          `The changelog (${data.partitions} partitions, ${data.keys.toLocaleString('en-US')} keys, one entry per counted record with the source-offset header) is written once, before the rounds, with min.compaction.lag.ms of a day so that no entry is compacted away while measured.`,
          'Persistent store (extra.otherStores): a first start (untimed) restores the changelog into a fresh LMDB store and stops cleanly, checkpointing the end; the measured restart loads the local store and reads nothing from the changelog. Its entries/s are the entries whose state is ready over start until ready; readyMs its median time to ready. On kafkajs only: the platformatic transport cannot read a partition.',
        ],
      };
    } finally {
      await deleteTopics([changelog]).catch((error: unknown) => ctx.log(`  could not delete ${changelog}: ${String(error)}`));
    }
  },
};

/** One run of ours: an app over a fresh empty topic, its group the app id whose changelog was filled. */
async function runOurs(
  ctx: ScenarioContext,
  common: Omit<ConsumerConfig, 'side' | 'input' | 'groupId' | 'mode'>,
  appId: string,
  data: DatasetSpec,
  store: 'memory' | 'persistent',
  round: number,
): Promise<RoundMeasurement> {
  const which = store === 'memory' ? 'ours' : `ours-${store}`;
  const names = { ...runNames('table-restore', which, round, false), groupId: appId };
  try {
    await createFreshTopics([{ name: names.input, partitions: data.partitions }]);
    const config: ConsumerConfig = { ...common, mode: store, side: which, input: names.input, groupId: appId, service: { dataset: JSON.stringify(data) } };
    return await measureRun(ctx, { scenario: 'table-restore', which, round, program: 'ours-table-restore', config }, (r) =>
      Promise.resolve({ checks: restoreChecks(r, data.records, store) }),
    );
  } finally {
    await cleanupRun(names);
  }
}
