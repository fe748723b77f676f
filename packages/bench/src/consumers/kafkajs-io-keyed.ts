/**
 * Baseline, io-keyed: the plain kafkajs `eachMessage` consumer, which handles one partition's records
 * one after another (here: one partition, so strictly sequential), with the same decode + validate and
 * simulated I/O as ours.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Trade } from '../data.js';
import { runConsumer } from './harness.js';
import { baselineConsumer, baselineKafka } from './kafkajs-baseline.js';

await runConsumer(async (config, recorder) => {
  const kafka = baselineKafka(config);
  const consumer = baselineConsumer(kafka, config);
  await consumer.connect();
  await consumer.subscribe({ topics: [config.input], fromBeginning: true });
  await consumer.run({
    partitionsConsumedConcurrently: config.partitionsConsumedConcurrently,
    eachMessage: async ({ message }) => {
      if (!message.value) return;
      recorder.begin();
      const trade = Trade.parse(JSON.parse(message.value.toString('utf8')));
      await sleep(config.ioDelayMs);
      recorder.handled(trade.seq, trade.producedAt, trade.key);
    },
  });
  return async () => {
    await consumer.disconnect();
  };
});
