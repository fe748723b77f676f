import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTopics, deleteTopics, requireServers, uniqueName, waitUntil } from '@stream/local-stack';
import { changelogTopicName, createApp, defineTopic, silentLogger, type App, type KafkaClient } from '../src/index.js';
import { brokers, changelogTable, clients, clientTransport, countingProgress, produceCountingInput, startTableWorker, wrongCounts } from './tables-kafka.js';

const topics: string[] = [];

/** A counting app over `input` on `client`: one table of counts per key. */
function counting(client: KafkaClient, id: string, input: string, exactlyOnce: boolean): App {
  const topic = defineTopic({ name: input, key: z.string(), value: z.object({ n: z.number() }) });
  const app = createApp({ id, brokers, transport: client, logger: silentLogger(), commitIntervalMs: 200 });
  const counts = app.table('counts', { key: z.string(), value: z.number(), default: 0 });
  app.agent(topic, { tables: [counts], exactlyOnce }, async (_value, ctx) => {
    const table = ctx.table(counts);
    table.set(ctx.key, (table.get(ctx.key) ?? 0) + 1);
  });
  return app;
}

// Each case on both clients: the app (and its forked workers) on `client`; the changelog is checked through kafkajs.
describe.each(clients)('tables on Kafka (%s)', (client) => {
  beforeAll(() => requireServers('kafka'));
  afterAll(() => deleteTopics(topics.splice(0)));

  for (const exactlyOnce of [false, true]) {
    it(`restores counts from the changelog across a restart and ends exact (${exactlyOnce ? 'exactly-once' : 'at-least-once'})`, async () => {
      const input = uniqueName('tables-in');
      const id = uniqueName('tables-app');
      topics.push(...(await createTopics([{ name: input, partitions: 6 }])), changelogTopicName(id, 'counts'));
      const producerApp = createApp({ id: uniqueName('tables-producer'), brokers, transport: client, logger: silentLogger() });
      const topic = defineTopic({ name: input, key: z.string(), value: z.object({ n: z.number() }) });
      const keys = Array.from({ length: 2000 }, (_, i) => `k${(i * 7) % 101}`);
      const expected = new Map<string, number>();
      for (const k of keys) expected.set(k, (expected.get(k) ?? 0) + 1);
      const send = (part: readonly string[]) => Promise.all(part.map((key) => producerApp.send(topic, { key, value: { n: 1 } })));
      const first = counting(client, id, input, exactlyOnce);
      await first.start();
      await send(keys.slice(0, 1000));
      const admin = clientTransport(client).admin();
      await admin.connect();
      const progress = countingProgress(admin, id, input, changelogTopicName(id, 'counts'));
      await waitUntil(async () => (await progress.committed()) >= 1000, 'first half committed', 60_000);
      await first.stop();
      const second = counting(client, id, input, exactlyOnce);
      await second.start();
      await send(keys.slice(1000));
      await progress.allCommitted(2000, 60_000);
      await second.stop();
      await admin.disconnect();
      await producerApp.stop();
      expect(await changelogTable(changelogTopicName(id, 'counts'), 6)).toEqual(expected);
    }, 120_000);
  }

  // Skipped for a while as flaky (about 1 run in 5 ended with wrong counts): the shared producer split one
  // changelog produce over two requests in flight at once, and a block of 1,000 entries landed after the
  // 274 that followed it, so a restore ended on stale counts (src/producer.test.ts, src/table.test.ts pin
  // the fix). Each record waits 1 ms, so that the kill lands mid-way: without it the first worker often
  // committed everything before the kill (under exactly-once its writes land a transaction at a time).
  // With a persistent local store (stateDir), the kill also lands between the store's writes and its next
  // checkpoint, and the restart reads only the changelog from that checkpoint.
  for (const { exactlyOnce, persistent } of [
    { exactlyOnce: false, persistent: false },
    { exactlyOnce: true, persistent: false },
    { exactlyOnce: false, persistent: true },
    { exactlyOnce: true, persistent: true },
  ]) {
    it(`a counting app SIGKILLed mid-way and restarted ends with exact counts (${exactlyOnce ? 'exactly-once' : 'at-least-once'}${persistent ? ', persistent store' : ''})`, async () => {
      const input = uniqueName('tables-kill-in');
      const id = uniqueName('tables-kill');
      topics.push(...(await createTopics([{ name: input, partitions: 6 }])), changelogTopicName(id, 'counts'));
      const total = 20_000;
      const expected = await produceCountingInput(input, total, 500);
      const admin = clientTransport(client).admin();
      await admin.connect();
      const changelog = changelogTopicName(id, 'counts');
      const progress = countingProgress(admin, id, input, changelog);
      const stateDir = persistent ? mkdtempSync(join(tmpdir(), 'stream-tables-kill-')) : undefined;
      const start = () =>
        startTableWorker(id, input, exactlyOnce, { KAFKA_CLIENT: client, WORKER_DELAY_MS: '1', ...(stateDir ? { STATE_DIR: stateDir } : {}) });
      try {
        const first = start();
        // Progress as the changelog's end offsets: committed offsets lag behind, and under exactly-once they
        // can jump from a fifth to everything between two reads.
        await waitUntil(async () => (await progress.written()) > total / 5, 'a fifth processed', 90_000);
        // Checkpoints past a tenth of the input, so the restart has much to skip (they come every 5 s).
        const checkpointed = () => [...first.checkpoints.values()].reduce((a, b) => a + b, 0);
        if (persistent) await waitUntil(() => checkpointed() >= total / 10, 'checkpoints past a tenth', 60_000);
        first.child.kill('SIGKILL');
        await first.exited;
        // Entries and, under exactly-once, transaction markers.
        const writtenAtKill = await progress.written();
        expect(writtenAtKill, 'the first worker processed everything before it was killed').toBeLessThan(total);
        const second = start();
        if (persistent) {
          await waitUntil(() => second.restored.size === 6, 'every partition restored', 60_000);
          const read = [...second.restored.values()].reduce((a, b) => a + b, 0);
          expect(read, `the restart read ${read} of the ${writtenAtKill} changelog offsets`).toBeLessThan(writtenAtKill - total / 20);
        }
        await progress.allCommitted(total, 120_000);
        second.child.kill('SIGTERM');
        expect(await second.exited).toBe(0);
      } finally {
        await admin.disconnect();
        if (stateDir) rmSync(stateDir, { recursive: true, force: true });
      }
      const { wrong, breaks, size } = await wrongCounts(changelog, 6, expected);
      expect(wrong, `first entries that do not count one more: ${breaks.join('; ')}`).toEqual([]);
      expect(size).toBe(expected.size);
    }, 240_000);
  }
});
