import { ExecutionQualitySummary, SlippageSample } from '@stream/contracts';
import { createApp, deadLetterTopicName, defineTopic, KAFKA_CLIENTS, silentLogger, type App } from '@stream/core';
import { createTopics, deleteTopics, localServers, requireServers, testKafka, uniqueName, waitUntil } from '@stream/local-stack';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { seededRandom } from './seed-market-data.js';
import { slippageSummaryAgent } from './summary.js';

const { kafkaBrokers } = localServers();
const SYMBOLS = ['ACME', 'GLOBEX', 'INITECH', 'UMBRELLA'];
const MINUTE = 60_000;
const GRACE = 20_000;
const T0 = Date.UTC(2026, 0, 1, 10);
const topics: string[] = [];

beforeAll(async () => {
  await requireServers('kafka');
});

afterAll(async () => {
  await deleteTopics(topics);
});

// On each Kafka client: the summary's windowed table is restored through the transport's readPartition.
describe.each(KAFKA_CLIENTS)('the slippage summary on Kafka (%s)', (client) => {
  it('emits each symbol-minute once, exactly, across a restart that restores the open windows from the changelog; a late sample is dead-lettered', async () => {
    const input = defineTopic({ name: uniqueName('eq-samples'), key: z.string().min(1), value: SlippageSample, partitions: 6 });
    const output = defineTopic({ name: uniqueName('eq-summary'), key: z.string().min(1), value: ExecutionQualitySummary, partitions: 6 });
    const id = uniqueName('eq-summary-app');
    topics.push(input.name, output.name, deadLetterTopicName(input.name), `${id}-slippage-changelog`);
    await createTopics([
      { name: input.name, partitions: 6 },
      { name: output.name, partitions: 6 },
    ]);
    const start = async (): Promise<App> => {
      const app = createApp({ id, brokers: kafkaBrokers, transport: client, createTopics: true, commitIntervalMs: 200, logger: silentLogger() });
      slippageSummaryAgent(app, input, output, { windowMs: MINUTE, graceMs: GRACE });
      await app.start();
      return app;
    };

    // Ten minutes of samples per symbol, in execution order give or take 10 s (less than the grace).
    const random = seededRandom('summary');
    const samples = Array.from({ length: 2000 }, (_, n) => ({
      orderId: `o-${n}`,
      symbol: SYMBOLS[n % SYMBOLS.length]!,
      executedAt: new Date(T0 + Math.max(0, Math.round((n / 2000) * 10 * MINUTE + (random() - 0.5) * 20_000))),
      slippageBps: Math.round((random() * 60 - 25) * 100) / 100,
    }));
    const producer = testKafka().producer();
    await producer.connect();
    const send = (list: typeof samples) =>
      producer.send({
        topic: input.name,
        messages: list.map((s) => ({ key: s.symbol, value: JSON.stringify({ ...s, executedAt: s.executedAt.toISOString() }) })),
      });

    // Read committed, as a downstream consumer would.
    const received: ExecutionQualitySummary[] = [];
    const reader = testKafka().consumer({ groupId: uniqueName('eq-summary-reader'), readUncommitted: false });
    await reader.connect();
    await reader.subscribe({ topic: output.name, fromBeginning: true });
    await reader.run({ eachMessage: async ({ message }) => void received.push(ExecutionQualitySummary.parse(JSON.parse(message.value!.toString()))) });

    let app = await start();
    await send(samples.slice(0, 1000));
    await waitUntil(() => received.length >= 4 * 3, 'the first minutes summarised', 60_000);
    await app.stop();
    app = await start();
    await send(samples.slice(1000));
    // Late on every partition: stream time is minutes past its window's end plus grace.
    await send([{ orderId: 'late', symbol: 'ACME', executedAt: new Date(T0 + 5_000), slippageBps: 1 }]);

    // The reference: every window whose end plus grace the symbol's partition's stream time passed is emitted.
    const reference = new Map<string, { count: number; sum: number; worst: number }>();
    const streamTime = new Map<string, number>();
    for (const s of samples) {
      const start = Math.floor(s.executedAt.getTime() / MINUTE) * MINUTE;
      const key = `${s.symbol}@${start}`;
      const r = reference.get(key) ?? { count: 0, sum: 0, worst: Number.NEGATIVE_INFINITY };
      reference.set(key, { count: r.count + 1, sum: r.sum + s.slippageBps, worst: Math.max(r.worst, s.slippageBps) });
      streamTime.set(s.symbol, Math.max(streamTime.get(s.symbol) ?? 0, s.executedAt.getTime()));
    }
    // Symbols may share a partition, so a window can close on another symbol's time: expect at least the
    // windows closed on the symbol's own time, and every summary equal to the reference's window.
    const surelyClosed = [...reference.keys()].filter((k) => {
      const [symbol, start] = k.split('@');
      return Number(start) + MINUTE + GRACE <= streamTime.get(symbol!)!;
    });
    await waitUntil(() => received.length >= surelyClosed.length, `${surelyClosed.length} summaries`, 60_000);
    const byKey = new Map<string, ExecutionQualitySummary[]>();
    for (const r of received) {
      const key = `${r.symbol}@${r.windowStart.getTime()}`;
      byKey.set(key, [...(byKey.get(key) ?? []), r]);
    }
    for (const [key, list] of byKey) {
      expect(list, key).toHaveLength(1);
      const want = reference.get(key);
      expect(want, key).toBeDefined();
      expect(list[0]!.count, key).toBe(want!.count);
      expect(list[0]!.meanBps, key).toBeCloseTo(want!.sum / want!.count, 6);
      expect(list[0]!.worstBps, key).toBe(want!.worst);
    }
    for (const key of surelyClosed) expect(byKey.has(key), key).toBe(true);

    const letters: string[] = [];
    const dlq = testKafka().consumer({ groupId: uniqueName('eq-summary-dlq') });
    await dlq.connect();
    await dlq.subscribe({ topic: deadLetterTopicName(input.name), fromBeginning: true });
    await dlq.run({ eachMessage: async ({ message }) => void letters.push(message.headers?.['dlq.error.class']?.toString() ?? '') });
    await waitUntil(() => letters.length >= 1, 'the late sample dead-lettered', 30_000);
    expect(letters).toEqual(['LateRecordError']);
    await Promise.all([dlq.disconnect(), reader.disconnect(), producer.disconnect(), app.stop()]);
  }, 180_000);
});
