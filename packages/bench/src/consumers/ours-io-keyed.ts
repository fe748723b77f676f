/** Ours, io-keyed: each record awaits simulated I/O; key-ordered concurrency lets other keys run meanwhile. */
import { setTimeout as sleep } from 'node:timers/promises';
import { defineTopic } from '@stream/core';
import { Trade } from '../data.js';
import { runConsumer } from './harness.js';
import { concurrency } from './instrumentation.js';
import { serviceApp } from './service-app.js';

await runConsumer(async (config, recorder) => {
  const input = defineTopic({ name: config.input, value: Trade });
  const app = serviceApp(config, recorder);
  app.agent(input, { concurrency: concurrency(config.concurrency), ordering: 'key' }, async (trade) => {
    recorder.begin();
    await sleep(config.ioDelayMs);
    recorder.handled(trade.seq, trade.producedAt, trade.key);
  });
  await app.start();
  return async () => {
    await app.stop();
  };
});
