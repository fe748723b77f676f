import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTopics, deleteTopics, localServers, requireServers, testKafka, uniqueName, waitUntil } from '@stream/local-stack';
import { createApp, defineTopic, silentLogger, type App } from '../src/index.js';
import { kafkaClients } from './fixtures.js';

const brokers = [...localServers().kafkaBrokers];
const topics: string[] = [];

async function produce(topic: string, partition: number, keys: readonly string[]): Promise<void> {
  const producer = testKafka().producer();
  await producer.connect();
  await producer.send({ topic, messages: keys.map((key, n) => ({ key, partition, value: JSON.stringify({ n }) })) });
  await producer.disconnect();
}

describe.each(kafkaClients)('a stuck partition on the real Kafka (%s)', (client) => {
  beforeAll(() => requireServers('kafka'));
  afterAll(() => deleteTopics(topics));

  it('is paused, its lag counts from the committed offset and keeps growing, and health names it, while the other partition commits', async () => {
    const name = uniqueName('pinned');
    topics.push(...(await createTopics([{ name, partitions: 2 }])));
    const topic = defineTopic({ name, key: z.string(), value: z.object({ n: z.number() }), partitions: 2 });
    let release!: () => void;
    const stuck = new Promise<void>((resolve) => (release = resolve));
    let started = 0;
    const app: App = createApp({
      id: uniqueName('pinned-app'),
      brokers,
      transport: client,
      logger: silentLogger(),
      commitIntervalMs: 100,
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 500,
      buffer: { maxRecords: 10 },
      stuckAfterMs: 500,
    });
    app.agent(topic, { name: 'pinner', concurrency: 4 }, async (_v, ctx) => {
      started += 1;
      if (ctx.key === 'stuck') await stuck;
    });
    await app.start();
    try {
      await produce(name, 0, ['stuck', ...Array.from({ length: 29 }, (_, i) => `a${i}`)]);
      await produce(
        name,
        1,
        Array.from({ length: 30 }, (_, i) => `b${i}`),
      );
      const lag = (partition: number) => app.health().lag.find((l) => l.partition === partition)?.lag;
      await waitUntil(() => started === 60 && lag(1) === 0, 'every fetched record started and partition 1 committed', 30_000);
      await produce(
        name,
        0,
        Array.from({ length: 20 }, (_, i) => `c${i}`),
      );
      // Nothing of partition 0 is committed: all it holds is lag, and so is what was written after it was paused.
      await waitUntil(() => lag(0) === 50, 'the lag of partition 0 to reach 50', 15_000);
      const p = (partition: number) => app.health().partitions.find((s) => s.partition === partition);
      expect(p(0)).toMatchObject({ paused: true, lag: 50, committedOffset: 0 });
      expect(p(1)).toMatchObject({ paused: false, lag: 0, committedOffset: 30 });
      await waitUntil(() => app.health().stuck.length === 1, 'the stuck record to be reported', 15_000);
      const health = app.health();
      expect(health.stuck[0]).toMatchObject({ topic: name, partition: 0, agent: 'pinner', offset: 0 });
      expect(p(0)!.heldRecords).toBeLessThanOrEqual(30);
      expect(started).toBe(60);
      expect(health.commitAgeMs).toBeGreaterThan(500);
      expect(p(1)!.commitAgeMs).toBe(0);
      release();
      await waitUntil(() => p(0)?.committedOffset === 50 && p(0)?.lag === 0, 'partition 0 to catch up', 30_000);
      expect(app.health().stuck).toEqual([]);
      expect(app.health().commitAgeMs).toBe(0);
    } finally {
      release();
      await app.stop();
    }
  }, 90_000);
});
