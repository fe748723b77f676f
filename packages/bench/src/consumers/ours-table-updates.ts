/**
 * Ours, table-updates: the README's counting agent over the trades, with the same agent options in every mode:
 *
 * - `table`: `table.set(key, (table.get(key) ?? 0) + 1)` on a table backed by its changelog, at-least-once:
 *   a record is done once its changelog entry is acknowledged (its offset commits only then);
 * - `table-eos`: the same with `exactlyOnce: true`: done once its transaction (entry + offset) committed;
 * - `stateless`: the same agent without the table, so the difference is what the table costs.
 */
import { defineTopic } from '@stream/core';
import { Trade } from '../data.js';
import { countsTable } from '../tables.js';
import { runConsumer } from './harness.js';
import { concurrency } from './instrumentation.js';
import { serviceApp } from './service-app.js';

await runConsumer(
  async (config, recorder) => {
    const exactlyOnce = config.mode === 'table-eos';
    const input = defineTopic({ name: config.input, value: Trade });
    // At-least-once: complete once every record is processed (its changelog write acknowledged); exactly-once:
    // once the committed offsets cover every record (processed comes before the transaction commits).
    const app = serviceApp(config, recorder, { exactlyOnce, acknowledged: !exactlyOnce });
    const counts = config.mode === 'stateless' ? undefined : countsTable(app);
    const options = { concurrency: concurrency(config.concurrency), ordering: 'partition' as const, exactlyOnce };
    app.agent(input, counts ? { ...options, tables: [counts] } : options, async (trade, ctx) => {
      recorder.begin();
      if (counts) {
        const table = ctx.table(counts);
        table.set(trade.key, (table.get(trade.key) ?? 0) + 1);
      }
      recorder.handled(trade.seq, trade.producedAt);
    });
    await app.start();
    return async () => {
      await app.stop();
    };
  },
  () => 'explicit',
);
