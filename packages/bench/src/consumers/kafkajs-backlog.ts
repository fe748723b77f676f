/** Baseline, backlog-memory: kafkajs `eachBatch` with the same light work per record, resolveOffset + commit. */
import { Trade, enrich } from '../data.js';
import { runConsumer } from './harness.js';
import { baselineConsumer, baselineKafka, runBatches } from './kafkajs-baseline.js';

await runConsumer(async (config, recorder) => {
  const kafka = baselineKafka(config);
  const consumer = baselineConsumer(kafka, config);
  let notional = 0;
  await runBatches(consumer, config, recorder, 'auto', async (payload) => {
    const { batch } = payload;
    for (const message of batch.messages) {
      if (!message.value) continue;
      const trade = Trade.parse(JSON.parse(message.value.toString('utf8')));
      notional += enrich(trade).notional;
      recorder.handled(trade.seq, trade.producedAt);
      payload.resolveOffset(message.offset);
    }
  });
  return async () => {
    await consumer.disconnect();
    if (!Number.isFinite(notional)) throw new Error('unreachable: keeps the work from being optimised away');
  };
});
