/**
 * Ours, table-restore: an app with the counting table over an empty topic of 6 partitions, whose changelog
 * the runner filled. Measured: from `app.start()` until `app.ready` (joined, no table partition restoring),
 * the restored entries counted through the instrumentation's `restoring` (what `stream_table_restored_entries`
 * reports). Then, untimed, a probe record per key checks that the table holds each key's last count.
 *
 * `config.mode` is the table's store: `memory`, or `persistent` (the LMDB local store, `stateDir`): then an
 * untimed first start restores the changelog into a fresh local store and stops cleanly (checkpointing its
 * end), and the measured start is the restart, which loads the local store and reads the changelog from the
 * checkpoint on (nothing). Its entries/s are the changelog entries whose state is ready, over the same time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp, createLogger, defineTopic } from '@stream/core';
import { z } from 'zod';
import type { DatasetSpec } from '../data.js';
import { countsTable, keyCounts } from '../tables.js';
import { runConsumer } from './harness.js';
import { param, serviceApp } from './service-app.js';

/** A key and the count its table entry must hold. */
const Probe = z.object({ key: z.string(), expected: z.number().int() });
const PROBES_WITHIN_MS = 120_000;

/** Resolves once `ready()` holds, polled every 5 ms (far below a restore's seconds: the app has no ready event). */
function whenReady(ready: () => boolean): { promise: Promise<number>; cancel: () => void } {
  let poll: NodeJS.Timeout | undefined;
  const promise = new Promise<number>((resolve) => {
    poll = setInterval(() => {
      if (!ready()) return;
      clearInterval(poll);
      resolve(performance.now());
    }, 5);
  });
  return { promise, cancel: () => clearInterval(poll) };
}

/** Untimed: a first app restores the whole changelog into a fresh local store and stops cleanly (checkpointing). */
async function primeLocalStore(groupId: string, brokers: readonly string[], input: string, stateDir: string): Promise<void> {
  const app = createApp({ id: groupId, brokers: [...brokers], stateDir, logger: createLogger({ name: 'bench-prime', level: 'warn' }) });
  app.agent(defineTopic({ name: input, value: Probe }), { tables: [countsTable(app)] }, async () => undefined);
  await app.start();
  await whenReady(() => app.ready).promise;
  await app.stop();
}

await runConsumer(
  async (config, recorder) => {
    if (config.mode !== 'memory' && config.mode !== 'persistent') throw new Error(`table-restore: unknown store ${config.mode}`);
    const spec = JSON.parse(param(config, 'dataset')) as DatasetSpec;
    const stateDir = config.mode === 'persistent' ? mkdtempSync(join(tmpdir(), 'bench-table-restore-')) : undefined;
    if (stateDir) await primeLocalStore(config.groupId, config.brokers, config.input, stateDir);
    const source = defineTopic({ name: config.input, value: Probe });
    const restoredByPartition = new Map<number, number>();
    let restoreStartedAt: number | undefined;
    const app = serviceApp(config, recorder, {
      outputs: [source],
      ...(stateDir ? { stateDir } : {}),
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
    const ready = whenReady(() => app.ready);
    void ready.promise.then((readyAt) => {
      recorder.diagnostics.readyMs = readyAt - startedAt;
      recorder.diagnostics.restorePhaseMs = readyAt - (restoreStartedAt ?? readyAt);
      const read = [...restoredByPartition.values()].reduce((a, b) => a + b, 0);
      recorder.diagnostics.restoredEntries = read;
      // The local store held the state of every entry: they count as ready, though (nearly) none was read.
      if (stateDir) recorder.counted(Math.max(0, config.expected - read));
      recorder.complete();
    });

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
        ready.cancel();
        await app.stop();
        if (stateDir) rmSync(stateDir, { recursive: true, force: true });
      },
    };
  },
  () => 'explicit',
);
