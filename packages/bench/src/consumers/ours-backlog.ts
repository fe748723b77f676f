/** Ours, backlog-memory: a large backlog consumed by an agent doing light work; memory must stay bounded. */
import { defineTopic } from '@stream/core';
import { Trade, enrich } from '../data.js';
import { runConsumer } from './harness.js';
import { concurrency } from './instrumentation.js';
import { serviceApp } from './service-app.js';

await runConsumer(async (config, recorder) => {
  const input = defineTopic({ name: config.input, value: Trade });
  const app = serviceApp(config, recorder);
  let notional = 0;
  app.agent(input, { concurrency: concurrency(config.concurrency), ordering: 'key' }, async (trade) => {
    recorder.begin();
    notional += enrich(trade).notional;
    recorder.handled(trade.seq, trade.producedAt);
  });
  await app.start();
  return async () => {
    await app.stop();
    if (!Number.isFinite(notional)) throw new Error('unreachable: keeps the work from being optimised away');
  };
});
