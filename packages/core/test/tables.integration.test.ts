import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTopics, deleteTopics, localServers, requireServers, testKafka, uniqueName, waitUntil } from '@stream/local-stack';
import { SOURCE_OFFSET_HEADER, changelogTopicName, createApp, defineTopic, KafkaTransport, silentLogger, type App } from '../src/index.js';

const brokers = [...localServers().kafkaBrokers];
const topics: string[] = [];
const WORKER = fileURLToPath(new URL('./table-worker.mjs', import.meta.url));

/** A counting app over `input`: one table of counts per key. */
function counting(id: string, input: string, exactlyOnce: boolean): App {
  const topic = defineTopic({ name: input, key: z.string(), value: z.object({ n: z.number() }) });
  const app = createApp({ id, brokers, logger: silentLogger(), commitIntervalMs: 200 });
  const counts = app.table('counts', { key: z.string(), value: z.number(), default: 0 });
  app.agent(topic, { tables: [counts], exactlyOnce }, async (_value, ctx) => {
    const table = ctx.table(counts);
    table.set(ctx.key, (table.get(ctx.key) ?? 0) + 1);
  });
  return app;
}

/** The table its changelog holds (last value per key), read back through the transport's restore read. */
async function changelogTable(changelog: string, partitions: number, breaks: string[] = []): Promise<Map<string, number>> {
  const transport = new KafkaTransport({ brokers, clientId: 'tables-test', logLevel: 'nothing' });
  const admin = transport.admin();
  await admin.connect();
  const ends = await admin.endOffsets(changelog);
  await admin.disconnect();
  const table = new Map<string, number>();
  for (let partition = 0; partition < partitions; partition++) {
    const end = Number(ends.find((o) => o.partition === partition)?.offset ?? 0);
    if (end === 0) continue;
    await transport.readPartition({
      topic: changelog,
      partition,
      end,
      signal: new AbortController().signal,
      onMessages: (messages) => {
        for (const m of messages) {
          const previous = table.get(m.key!.toString()) ?? 0;
          const value = m.value === null ? 0 : (JSON.parse(m.value.toString()) as number);
          // Each entry counts one more record of its key: anything else is where state went wrong.
          if (value !== previous + 1 && breaks.length < 5) {
            breaks.push(`${partition}@${m.offset} (source ${m.headers[SOURCE_OFFSET_HEADER]?.toString()}): ${m.key!.toString()} ${previous} -> ${value}`);
          }
          if (m.value === null) table.delete(m.key!.toString());
          else table.set(m.key!.toString(), value);
        }
      },
    });
  }
  return table;
}

describe('tables on Kafka', () => {
  beforeAll(() => requireServers('kafka'));
  afterAll(() => deleteTopics(topics));

  for (const exactlyOnce of [false, true]) {
    it(`restores counts from the changelog across a restart and ends exact (${exactlyOnce ? 'exactly-once' : 'at-least-once'})`, async () => {
      const input = uniqueName('tables-in');
      const id = uniqueName('tables-app');
      topics.push(...(await createTopics([{ name: input, partitions: 6 }])), changelogTopicName(id, 'counts'));
      const producerApp = createApp({ id: uniqueName('tables-producer'), brokers, logger: silentLogger() });
      const topic = defineTopic({ name: input, key: z.string(), value: z.object({ n: z.number() }) });
      const keys = Array.from({ length: 2000 }, (_, i) => `k${(i * 7) % 101}`);
      const expected = new Map<string, number>();
      for (const k of keys) expected.set(k, (expected.get(k) ?? 0) + 1);
      const send = (part: readonly string[]) => Promise.all(part.map((key) => producerApp.send(topic, { key, value: { n: 1 } })));
      const first = counting(id, input, exactlyOnce);
      await first.start();
      await send(keys.slice(0, 1000));
      const transport = new KafkaTransport({ brokers, clientId: 'tables-test', logLevel: 'nothing' });
      const admin = transport.admin();
      await admin.connect();
      const committedTotal = async () => (await admin.committedOffsets(id, input)).reduce((sum, o) => sum + Number(o.offset), 0);
      await waitUntil(async () => (await committedTotal()) >= 1000, 'first half committed', 60_000);
      await first.stop();
      const second = counting(id, input, exactlyOnce);
      await second.start();
      await send(keys.slice(1000));
      await waitUntil(async () => (await committedTotal()) >= 2000, 'every record committed', 60_000);
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
      const expected = new Map<string, number>();
      const producer = testKafka().producer();
      await producer.connect();
      for (let i = 0; i < total; i += 5000) {
        const messages = Array.from({ length: 5000 }, (_, j) => ({ key: `k${(i + j) % 500}`, value: JSON.stringify({ n: i + j }) }));
        for (const m of messages) expected.set(m.key, (expected.get(m.key) ?? 0) + 1);
        await producer.send({ topic: input, messages });
      }
      await producer.disconnect();
      const transport = new KafkaTransport({ brokers, clientId: 'tables-test', logLevel: 'nothing' });
      const admin = transport.admin();
      await admin.connect();
      const committedTotal = async () => (await admin.committedOffsets(id, input)).reduce((sum, o) => sum + Number(o.offset), 0);
      const stateDir = persistent ? mkdtempSync(join(tmpdir(), 'stream-tables-kill-')) : undefined;
      const start = () => {
        const child = fork(WORKER, [brokers.join(','), id, input], {
          stdio: ['ignore', 'ignore', process.env.WORKER_LOG_LEVEL ? 'inherit' : 'ignore', 'ipc'],
          env: { ...process.env, EXACTLY_ONCE: exactlyOnce ? '1' : '0', WORKER_DELAY_MS: '1', ...(stateDir ? { STATE_DIR: stateDir } : {}) },
        });
        const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
        // Per partition: changelog entries its last restore read, its last checkpoint.
        const restored = new Map<number, number>();
        const checkpoints = new Map<number, number>();
        child.on('message', (m: { kind: string; partition: number; restored?: number; offset?: number }) => {
          if (m.kind === 'restored') restored.set(m.partition, m.restored!);
          if (m.kind === 'checkpointed') checkpoints.set(m.partition, m.offset!);
        });
        return { child, exited, restored, checkpoints };
      };
      try {
        const first = start();
        // Progress as the changelog's end offsets (one entry per record): committed offsets lag behind, and
        // under exactly-once they can jump from a fifth to everything between two reads.
        const changelog = changelogTopicName(id, 'counts');
        const written = async () =>
          (await admin.listTopics()).includes(changelog) ? (await admin.endOffsets(changelog)).reduce((sum, o) => sum + Number(o.offset), 0) : 0;
        await waitUntil(async () => (await written()) > total / 5, 'a fifth processed', 90_000);
        // Checkpoints past a tenth of the input, so the restart has much to skip (they come every 5 s).
        const checkpointed = () => [...first.checkpoints.values()].reduce((a, b) => a + b, 0);
        if (persistent) await waitUntil(() => checkpointed() >= total / 10, 'checkpoints past a tenth', 60_000);
        first.child.kill('SIGKILL');
        await first.exited;
        // Entries and, under exactly-once, transaction markers.
        const writtenAtKill = await written();
        expect(writtenAtKill, 'the first worker processed everything before it was killed').toBeLessThan(total);
        const second = start();
        if (persistent) {
          await waitUntil(() => second.restored.size === 6, 'every partition restored', 60_000);
          const read = [...second.restored.values()].reduce((a, b) => a + b, 0);
          expect(read, `the restart read ${read} of the ${writtenAtKill} changelog offsets`).toBeLessThan(writtenAtKill - total / 20);
        }
        try {
          await waitUntil(async () => (await committedTotal()) === total, 'every record committed', 120_000);
        } catch (error) {
          const committed = (await admin.committedOffsets(id, input)).map((o) => `${o.partition}:${o.offset}`).join(' ');
          const ends = (await admin.endOffsets(changelog)).map((o) => `${o.partition}:${o.offset}`).join(' ');
          throw new Error(`${(error as Error).message} (committed ${committed}; changelog ends ${ends})`, { cause: error });
        }
        second.child.kill('SIGTERM');
        expect(await second.exited).toBe(0);
      } finally {
        await admin.disconnect();
        if (stateDir) rmSync(stateDir, { recursive: true, force: true });
      }
      const breaks: string[] = [];
      const actual = await changelogTable(changelogTopicName(id, 'counts'), 6, breaks);
      const wrong = [...expected].filter(([k, n]) => actual.get(k) !== n).map(([k, n]) => `${k}: ${actual.get(k)} not ${n}`);
      expect(wrong, `first entries that do not count one more: ${breaks.join('; ')}`).toEqual([]);
      expect(actual.size).toBe(expected.size);
    }, 240_000);
  }
});
