/**
 * Baseline, table-restore: a plain kafkajs consumer reading the table's changelog (`config.input`) from
 * the beginning to the end offsets read at its start, read_committed, doing nothing with the entries:
 * what a restore cannot beat. Measured like ours from before connecting until every partition's end.
 */
import { runConsumer } from './harness.js';
import { baselineConsumer, baselineKafka, runBatches } from './kafkajs-baseline.js';

await runConsumer(
  async (config, recorder) => {
    const kafka = baselineKafka(config);
    const startedAt = performance.now();
    recorder.begin();
    const admin = kafka.admin();
    await admin.connect();
    // Partition → its end offset, for the partitions not read to it yet.
    const ends = new Map((await admin.fetchTopicOffsets(config.input)).map((o) => [o.partition, Number(o.high)] as const).filter(([, end]) => end > 0));
    await admin.disconnect();
    const consumer = baselineConsumer(kafka, config);
    const done = () => {
      if (recorder.diagnostics.readyMs !== undefined) return;
      recorder.diagnostics.readyMs = performance.now() - startedAt;
      recorder.complete();
    };
    if (ends.size === 0) done();
    await runBatches(consumer, config, recorder, 'auto', ({ batch }) => {
      recorder.counted(batch.messages.length);
      const end = ends.get(batch.partition);
      if (end !== undefined && Number(batch.lastOffset()) + 1 >= end) ends.delete(batch.partition);
      if (ends.size === 0) done();
      return Promise.resolve();
    });
    return async () => {
      await consumer.disconnect();
    };
  },
  () => 'explicit',
);
