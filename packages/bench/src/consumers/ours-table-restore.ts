/**
 * Ours, table-restore: an app with the counting table over an empty topic of 6 partitions, whose changelog
 * the runner filled. Measured: from `app.start()` until `app.ready` (joined, no table partition restoring),
 * the restored entries counted through the instrumentation's `restoring` (what `stream_table_restored_entries`
 * reports). Then, untimed, a probe record per key checks that the table holds each key's last count.
 *
 * `config.mode` is the table's store: `memory` (the only one yet). A persistent store would be another mode.
 */
import { defineTopic } from '@stream/core';
import { z } from 'zod';
import type { DatasetSpec } from '../data.js';
import { countsTable, keyCounts } from '../tables.js';
import { runConsumer } from './harness.js';
import { param, serviceApp } from './service-app.js';

/** A key and the count its table entry must hold. */
const Probe = z.object({ key: z.string(), expected: z.number().int() });
const PROBES_WITHIN_MS = 120_000;

await runConsumer(
  async (config, recorder) => {
    if (config.mode !== 'memory') throw new Error(`table-restore: unknown store ${config.mode}`);
    const spec = JSON.parse(param(config, 'dataset')) as DatasetSpec;
    const source = defineTopic({ name: config.input, value: Probe });
    const restoredByPartition = new Map<number, number>();
    let restoreStartedAt: number | undefined;
    const app = serviceApp(config, recorder, {
      outputs: [source],
      restoring: (_table, partition, _lag, restored) => {
        restoreStartedAt ??= performance.now();
        // Cumulative per partition (a retried restore starts again from 0: only growth counts).
        recorder.counted(Math.max(0, restored - (restoredByPartition.get(partition) ?? 0)));
        restoredByPartition.set(partition, restored);
      },
    });
    const counts = countsTable(app);
    let probed = 0;
    let wrong = 0;
    let allProbed: () => void = () => undefined;
    const probesDone = new Promise<void>((resolve) => (allProbed = resolve));
    let probes = Number.POSITIVE_INFINITY;
    app.agent(source, { tables: [counts] }, async (probe, ctx) => {
      if (ctx.table(counts).get(probe.key) !== probe.expected) wrong += 1;
      probed += 1;
      if (probed >= probes) allProbed();
    });

    const startedAt = performance.now();
    recorder.begin();
    await app.start();
    // Polled: the app has no ready event; 5 ms is far below a restore's seconds.
    const poll = setInterval(() => {
      if (!app.ready) return;
      clearInterval(poll);
      const readyAt = performance.now();
      recorder.diagnostics.readyMs = readyAt - startedAt;
      recorder.diagnostics.restorePhaseMs = readyAt - (restoreStartedAt ?? readyAt);
      recorder.diagnostics.restoredEntries = [...restoredByPartition.values()].reduce((a, b) => a + b, 0);
      recorder.complete();
    }, 5);

    const verify = async (): Promise<void> => {
      const expected = keyCounts(spec);
      probes = expected.size;
      await Promise.all([...expected].map(([key, count]) => source.send(app, { key, value: { key, expected: count } })));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([probesDone, new Promise<void>((resolve) => (timer = setTimeout(resolve, PROBES_WITHIN_MS)))]);
      clearTimeout(timer);
      Object.assign(recorder.diagnostics, { probes, probesWrong: wrong, probesMissing: probes - probed });
      // The app's consumer fetched nothing but the probes (a restore reads through consumers of its own).
      delete recorder.diagnostics.batchesFetched;
    };
    return {
      verify,
      stop: async () => {
        clearInterval(poll);
        await app.stop();
      },
    };
  },
  () => 'explicit',
);
