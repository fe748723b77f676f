/**
 * Tables, updates: the README's counting agent (`table.set(key, (table.get(key) ?? 0) + 1)`, one table)
 * against the same agent without the table, on the passthrough data (6 partitions, 10,000 keys), and the
 * table agent under exactly-once in the same rounds. After each table run its changelog is read back: the
 * last count of every key must be the key's number of records.
 */
import { changelogTopicName } from '@stream/core';
import { deleteTopics } from '@stream/local-stack';
import { ratio } from '../stats.js';
import { readCounts } from '../table-changelog.js';
import { COUNTS_TABLE, countDifferences, keyCounts } from '../tables.js';
import { passthroughData } from './passthrough.js';
import { checkViolations, DEFAULT_SIDE_CONFIG, runPair, summarize, type PerRunSide, type RunSetup, type Side } from './pair.js';
import type { Scenario, SideSummary } from './types.js';

/**
 * An agent with tables runs each partition in offset order and `concurrency` spreads over partitions: one
 * record in flight per partition. The stateless agent gets the same options.
 */
const CONCURRENCY = 6;
/** Provisional (issue #18 sets none): what a table may cost at most. Never fails the run. */
const TARGET = 0.5;

const config = { ...DEFAULT_SIDE_CONFIG, concurrency: CONCURRENCY };
const table: Side = {
  label: `app.agent with a counting table, concurrency ${CONCURRENCY}, at-least-once`,
  program: 'ours-table-updates',
  config: { ...config, mode: 'table' },
};
const stateless: Side = { label: `the same agent without the table`, program: 'ours-table-updates', config: { ...config, mode: 'stateless' } };
const tableEos: Side = { label: `the table agent with exactlyOnce`, program: 'ours-table-updates', config: { ...config, mode: 'table-eos' } };

/** `8,123 rec/s, 41.2 CPU ms / 1k rec, peak RSS 152 MB` */
function brief(side: SideSummary): string {
  return `${Math.round(side.recordsPerSec).toLocaleString('en-US')} rec/s, ${side.cpuMsPer1kRecords.toFixed(1)} CPU ms / 1k rec, peak RSS ${Math.round(side.peakRssMb)} MB`;
}

export const tableUpdates: Scenario = {
  name: 'table-updates',
  title: 'Tables: updates/s',
  description: 'counting agent with a table (get + set per record, changelog) vs the same agent without it; and with exactlyOnce',
  defaultRounds: { quick: 1, full: 3 },
  async run(ctx) {
    const data = passthroughData(ctx.quick);
    const expected = keyCounts(data);
    // The table sides' changelog (`<appId>-counts-changelog`, the app id being the run's group) is checked
    // against the input's per-key counts, then deleted with the run.
    const perRun = (which: PerRunSide, _round: number, names: { readonly groupId: string }): Promise<RunSetup> => {
      if (which === 'baseline') return Promise.resolve({ service: {} });
      const changelog = changelogTopicName(names.groupId, COUNTS_TABLE);
      return Promise.resolve({
        service: {},
        check: async () => countDifferences(await readCounts(changelog, data.records), expected).map((d) => `changelog ${d}`),
        cleanup: () => deleteTopics([changelog]),
      });
    };
    const runs = await runPair(ctx, {
      scenario: 'table-updates',
      data,
      output: false,
      // ~300 records/s at worst, as the passthrough scenarios.
      deadlineMs: () => Math.max(120_000, (data.records / 300) * 1000),
      ours: table,
      baseline: stateless,
      also: tableEos,
      perRun,
    });
    const ours = summarize(table.label, runs.ours);
    const baseline = summarize(stateless.label, runs.baseline);
    const eos = summarize(tableEos.label, runs.also);
    const r = ratio(ours.recordsPerSec, baseline.recordsPerSec);
    return {
      scenario: 'table-updates',
      title: tableUpdates.title,
      params: { ...data, recordBytes: '~220', table: COUNTS_TABLE, ours: table.config, baseline: stateless.config, also: tableEos.config },
      ours,
      baseline,
      ratio: r,
      ratioMetric: 'recordsPerSec',
      target: `≥ ${TARGET}× the stateless agent's records/s (provisional)`,
      targetMet: r >= TARGET,
      extra: {
        table: brief(ours),
        stateless: brief(baseline),
        tableExactlyOnce: brief(eos),
        exactlyOnceOverStateless: Number(ratio(eos.recordsPerSec, baseline.recordsPerSec).toFixed(2)),
        exactlyOnceOverAtLeastOnce: Number(ratio(eos.recordsPerSec, ours.recordsPerSec).toFixed(2)),
        exactlyOnceRounds: runs.also.map((m) => ({
          round: m.round,
          recordsPerSec: Math.round(m.recordsPerSec),
          peakRssMb: Math.round(m.peakRssMb),
          cpuMsPer1kRecords: Number(m.cpuMsPer1kRecords.toFixed(1)),
        })),
      },
      violations: [...checkViolations('table', runs.ours), ...checkViolations('table exactly-once', runs.also)],
      notes: [
        'ratio = the table agent / the stateless agent, records/s; both are the same agent (concurrency 6, ordering partition) on the same data, the stateless one without the table.',
        'Completion: at-least-once, every record processed, i.e. its changelog entry acknowledged (acks=all); exactly-once, the committed offsets cover every record (entries and offsets in one transaction).',
        "Check: after each table run its changelog is read back (read_committed): every key's last count must equal its number of records.",
        'On kafkajs only: the platformatic transport cannot read a partition yet, so it cannot restore a table.',
      ],
    };
  },
};
