/**
 * Baseline, passthrough: a hand-written kafkajs `eachBatch` doing the same work as ours: JSON.parse +
 * zod parse of each value, the same `enrich` + zod check of the output (ours validates what it sends),
 * one `producer.sendBatch` of the batch's outputs, then resolveOffset + commit. The consumer settings of
 * kafkajs-baseline.ts (kafkajs's default 1 MiB per partition, 100 ms max wait, read_committed), an
 * idempotent producer with acks=-1 and the murmur2 partitioner, as the runtime's.
 */
import { Partitioners, type Message } from 'kafkajs';
import { Enriched, Trade, enrich } from '../data.js';
import { runConsumer } from './harness.js';
import { baselineConsumer, baselineKafka, runBatches } from './kafkajs-baseline.js';

await runConsumer(async (config, recorder) => {
  const output = config.output;
  if (!output) throw new Error('passthrough needs an output topic');
  const kafka = baselineKafka(config);
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 5,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  const consumer = baselineConsumer(kafka, config);
  await producer.connect();
  await runBatches(consumer, config, recorder, 'auto', async (payload) => {
    const { batch } = payload;
    const outputs: Message[] = [];
    const done: { seq: number; producedAt: number }[] = [];
    for (const message of batch.messages) {
      if (!message.value) continue;
      const trade = Trade.parse(JSON.parse(message.value.toString('utf8')));
      const enriched = Enriched.parse(enrich(trade));
      outputs.push({ key: trade.key, value: JSON.stringify(enriched) });
      done.push({ seq: trade.seq, producedAt: trade.producedAt });
    }
    if (outputs.length > 0) await producer.sendBatch({ topicMessages: [{ topic: output, messages: outputs }], acks: -1 });
    for (const d of done) recorder.handled(d.seq, d.producedAt);
  });
  return async () => {
    await consumer.disconnect();
    await producer.disconnect();
  };
});
