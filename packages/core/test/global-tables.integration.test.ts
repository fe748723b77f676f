/**
 * Global tables on the local broker: two instances each load every partition of a topic, then follow it
 * (the transport's readPartition, from a start offset: on kafkajs a throwaway group per read, on
 * @platformatic/kafka fetches outside any group), on each Kafka client.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTopics, deleteTopics, localServers, requireServers, testKafka, uniqueName, waitUntil } from '@stream/local-stack';
import { createApp, defineTopic, KAFKA_CLIENTS, silentLogger, type App } from '../src/index.js';

const brokers = [...localServers().kafkaBrokers];
const topics: string[] = [];
const cleanups: (() => Promise<unknown>)[] = [];
const Instrument = z.object({ symbol: z.string(), tick: z.number().positive() });

describe.each(KAFKA_CLIENTS)('global tables on Kafka (%s) (#18, #19)', (client) => {
  beforeAll(() => requireServers('kafka'));
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });
  afterAll(() => deleteTopics(topics.splice(0)));

  it('two instances load every partition, skip a bad value, then follow updates and tombstones', async () => {
    const name = uniqueName('global-instruments');
    topics.push(...(await createTopics([{ name, partitions: 3 }])));
    const instruments = defineTopic({ name, key: z.string(), value: Instrument, partitions: 3 });
    const producer = testKafka().producer();
    await producer.connect();
    cleanups.push(() => producer.disconnect());
    const symbols = Array.from({ length: 30 }, (_, i) => `SYM${i}`);
    await producer.send({
      topic: name,
      messages: [
        ...symbols.map((s, i) => ({ key: s, value: JSON.stringify({ symbol: s, tick: i + 1 }) })),
        { key: 'BAD', value: JSON.stringify({ symbol: 'BAD', tick: -1 }), partition: 1 },
      ],
    });

    const readers = [0, 1].map(() => {
      const app: App = createApp({ id: uniqueName('global-reader'), brokers, transport: client, logger: silentLogger() });
      const table = app.globalTable('instruments', { topic: instruments, intervalMs: 200 });
      cleanups.push(() => app.stop());
      return { app, table };
    });
    await Promise.all(readers.map((r) => r.app.start()));
    for (const { app, table } of readers) {
      expect(app.ready).toBe(true);
      expect(table.size).toBe(30);
      for (const [i, s] of symbols.entries()) expect(table.get(s)).toEqual({ symbol: s, tick: i + 1 });
      expect(table.has('BAD')).toBe(false);
      expect(app.health().globalTables[0]).toMatchObject({ loaded: true, lag: 0, skipped: 1, lastSkipped: { partition: 1 } });
    }

    const sent = Date.now();
    await producer.send({
      topic: name,
      messages: [
        { key: 'SYM0', value: JSON.stringify({ symbol: 'SYM0', tick: 99 }) },
        { key: 'SYM1', value: null },
      ],
    });
    for (const { table } of readers) {
      await waitUntil(() => table.get('SYM0')?.tick === 99 && !table.has('SYM1'), 'the update and the tombstone on both instances', 30_000);
    }
    const latencyMs = Date.now() - sent;
    console.info(`global table followed an update in ${latencyMs} ms on ${client} (interval 200 ms)`);
    expect(readers[0]!.app.health().globalTables[0]!.lag).toBe(0);

    await Promise.all(readers.map((r) => r.app.stop()));
    for (const { app } of readers) expect(app.state).toBe('stopped');
  }, 120_000);
});
