import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp, type App } from './app.js';
import { defineTopic } from './topic.js';
import { SOURCE_OFFSET_HEADER, Table, changelogTopicName } from './table.js';
import type { OutgoingMessage } from './transport/transport.js';
import { MemoryBroker, MemoryTransport } from './testing/index.js';
import { eventually, settled, silent, unique } from './table-test-support.js';
import { noInstrumentation, type Instrumentation } from './runtime/instrumentation.js';
import { LocalStore } from './table-store.js';

interface Counting {
  readonly app: App;
  readonly changelog: string;
}

/** A counting app: counts records per key in a table, one instance of group `id` on `broker`. */
function countingApp(
  broker: MemoryBroker,
  id: string,
  topicName: string,
  options: { exactlyOnce?: boolean; commitIntervalMs?: number; stateDir?: string; instrumentation?: Instrumentation } = {},
): Counting {
  const topic = defineTopic({ name: topicName, key: z.string(), value: z.object({ n: z.number() }) });
  const app = createApp({
    id,
    transport: new MemoryTransport(broker, { maxBatchSize: 50 }),
    commitIntervalMs: options.commitIntervalMs ?? 20,
    logger: silent(),
    ...(options.stateDir === undefined ? {} : { stateDir: options.stateDir }),
    ...(options.instrumentation === undefined ? {} : { instrumentation: options.instrumentation }),
  });
  const counts = app.table('counts', { key: z.string(), value: z.number(), default: 0 });
  app.agent(topic, { tables: [counts], exactlyOnce: options.exactlyOnce ?? false }, async (_value, ctx) => {
    const table = ctx.table(counts);
    table.set(ctx.key, (table.get(ctx.key) ?? 0) + 1);
  });
  return { app, changelog: changelogTopicName(id, 'counts') };
}

/** The table as its changelog holds it: the last value of every key (what compaction keeps). */
function foldChangelog(broker: MemoryBroker, changelog: string): Map<string, number> {
  const table = new Map<string, number>();
  for (const m of broker.messages(changelog)) {
    const key = m.key!.toString();
    if (m.value === null) table.delete(key);
    else table.set(key, JSON.parse(m.value.toString()) as number);
  }
  return table;
}

async function produce(broker: MemoryBroker, topic: string, keys: readonly string[], transport = new MemoryTransport(broker)): Promise<void> {
  const producer = transport.producer();
  await producer.connect();
  await producer.send(keys.map((key) => ({ topic, key: Buffer.from(key), value: Buffer.from('{"n":1}'), headers: {} })));
}

function reference(keys: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
}

/** Stops an instance as a crash would: nothing it processed since its last commit is committed. */
async function crash(broker: MemoryBroker, app: App): Promise<void> {
  const removeCommit = broker.failNext('commit', 1_000_000);
  const removeTx = broker.failNext('transaction', 1_000_000);
  await app.stop();
  removeCommit();
  removeTx();
}

describe('tables on the memory transport', () => {
  it('counts per key, writes a compacted changelog with the source offset, and restores it on restart', async () => {
    const broker = new MemoryBroker();
    const topic = unique('clicks');
    const id = unique('counter');
    broker.createTopic(topic, 3);
    const first = countingApp(broker, id, topic);
    await first.app.start();
    const keys = Array.from({ length: 300 }, (_, i) => `k${(i * 7) % 23}`);
    await produce(broker, topic, keys.slice(0, 150));
    await settled(broker, id, topic);
    await first.app.stop();
    expect(broker.endOffsets(first.changelog)).toHaveLength(3);
    const entry = broker.messages(first.changelog)[0]!;
    expect(entry.headers[SOURCE_OFFSET_HEADER]?.toString()).toMatch(/^\d+$/);
    // Every entry lies in the changelog partition of its source partition: the key hashes there.
    const second = countingApp(broker, id, topic);
    await second.app.start();
    await produce(broker, topic, keys.slice(150));
    await settled(broker, id, topic);
    await second.app.stop();
    expect(foldChangelog(broker, first.changelog)).toEqual(reference(keys));
  });

  it('fails the start when the changelog has another partition count than the source', async () => {
    const broker = new MemoryBroker();
    const topic = unique('clicks');
    const id = unique('counter');
    broker.createTopic(topic, 3);
    broker.createTopic(changelogTopicName(id, 'counts'), 2);
    const { app } = countingApp(broker, id, topic);
    await expect(app.start()).rejects.toThrow(/changelog .* has 2 partitions but its source topic .* has 3/);
  });

  it('fails the start when one table is used over topics that are not co-partitioned', async () => {
    const broker = new MemoryBroker();
    const [a, b] = [unique('a'), unique('b')];
    broker.createTopic(a, 3);
    broker.createTopic(b, 4);
    const app = createApp({ id: unique('app'), transport: new MemoryTransport(broker), logger: silent() });
    const t = app.table('t', { key: z.string(), value: z.number() });
    const handler = async () => undefined;
    app.agent(defineTopic({ name: a, value: z.unknown() }), { tables: [t] }, handler);
    app.agent(defineTopic({ name: b, value: z.unknown() }), { tables: [t] }, handler);
    await expect(app.start()).rejects.toThrow(/not co-partitioned/);
  });

  it('refuses a key of another partition inside a handler', async () => {
    const broker = new MemoryBroker();
    const topic = unique('clicks');
    broker.createTopic(topic, 4);
    const app = createApp({ id: unique('app'), transport: new MemoryTransport(broker), logger: silent(), commitIntervalMs: 20 });
    const t = app.table('t', { key: z.string(), value: z.number() });
    const errors: string[] = [];
    app.agent(defineTopic({ name: topic, value: z.unknown() }), { tables: [t], deadLetter: false, retry: { attempts: 1 } }, async (_v, ctx) => {
      try {
        for (let i = 0; i < 20; i++) ctx.table(t).get(`other-${i}`);
      } catch (error) {
        errors.push((error as Error).message);
      }
    });
    await app.start();
    await produce(broker, topic, ['x']);
    await eventually(() => expect(errors[0]).toMatch(/belongs to partition \d, but this record's partition is \d/));
    await app.stop();
  });

  for (const exactlyOnce of [false, true]) {
    it(`keeps counts exact across a crash before commit and a restart (${exactlyOnce ? 'exactly-once' : 'at-least-once'})`, async () => {
      const broker = new MemoryBroker();
      const topic = unique('clicks');
      const id = unique('counter');
      broker.createTopic(topic, 3);
      const keys = Array.from({ length: 400 }, (_, i) => `k${i % 17}`);
      const first = countingApp(broker, id, topic, { exactlyOnce, commitIntervalMs: 60_000 });
      await first.app.start();
      await produce(broker, topic, keys.slice(0, 200));
      // Processed (and at-least-once: its changelog written), never committed.
      await eventually(() => expect(foldChangelog(broker, first.changelog).size > 0 || exactlyOnce).toBe(true));
      await eventually(() => expect(first.app.health().agents[0]!.inFlight).toBe(0));
      await crash(broker, first.app);
      const second = countingApp(broker, id, topic, { exactlyOnce });
      await second.app.start();
      await produce(broker, topic, keys.slice(200));
      await settled(broker, id, topic);
      await second.app.stop();
      expect(foldChangelog(broker, first.changelog)).toEqual(reference(keys));
    });
  }

  it('is not ready while restoring, and a rebalance during the restore aborts it cleanly', async () => {
    const broker = new MemoryBroker();
    const topic = unique('clicks');
    const id = unique('counter');
    broker.createTopic(topic, 2);
    const keys = Array.from({ length: 4000 }, (_, i) => `k${i % 2000}`);
    const first = countingApp(broker, id, topic);
    await first.app.start();
    await produce(broker, topic, keys);
    await settled(broker, id, topic);
    await first.app.stop();
    const a = countingApp(broker, id, topic);
    await a.app.start();
    await eventually(() => expect(a.app.health().partitions.some((p) => p.restoring)).toBe(true), 5000);
    expect(a.app.ready).toBe(false);
    // Joins while `a` restores: the group rebalances and `a`'s restores in progress are dropped.
    const b = countingApp(broker, id, topic);
    await b.app.start();
    await produce(broker, topic, keys.slice(0, 500));
    await settled(broker, id, topic);
    await eventually(() => expect(a.app.ready && b.app.ready).toBe(true));
    await Promise.all([a.app.stop(), b.app.stop()]);
    expect(foldChangelog(broker, first.changelog)).toEqual(reference([...keys, ...keys.slice(0, 500)]));
  });

  for (const exactlyOnce of [false, true]) {
    it(`property: interleaved updates, crashes and rebalances leave the table equal to a fold of the input (${exactlyOnce ? 'exactly-once' : 'at-least-once'})`, async () => {
      const step = fc.oneof(
        fc.record({ kind: fc.constant('send' as const), keys: fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 40 }) }),
        fc.record({ kind: fc.constantFrom('crash' as const, 'stop' as const, 'join' as const) }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 8 }), async (steps) => {
          const broker = new MemoryBroker();
          const topic = unique('clicks');
          const id = unique('counter');
          broker.createTopic(topic, 3);
          const sent: string[] = [];
          let running: Counting[] = [countingApp(broker, id, topic, { exactlyOnce })];
          await running[0]!.app.start();
          for (const s of steps) {
            if (s.kind === 'send') {
              const keys = s.keys.map((k) => `k${k}`);
              sent.push(...keys);
              await produce(broker, topic, keys);
              await new Promise((r) => setTimeout(r, 5));
            } else if (s.kind === 'join') {
              const next = countingApp(broker, id, topic, { exactlyOnce });
              await next.app.start();
              running.push(next);
            } else {
              const victim = running.shift()!;
              if (s.kind === 'crash') await crash(broker, victim.app);
              else await victim.app.stop();
              if (running.length === 0) {
                const next = countingApp(broker, id, topic, { exactlyOnce });
                await next.app.start();
                running = [next];
              }
            }
          }
          await settled(broker, id, topic);
          await Promise.all(running.map((r) => r.app.stop()));
          expect(foldChangelog(broker, changelogTopicName(id, 'counts'))).toEqual(reference(sent));
        }),
        { numRuns: 15 },
      );
    }, 120_000);
  }
});

/** Instrumentation that counts the changelog entries each restore read, per partition (the last restore's). */
function restoreCounter(): { readonly instrumentation: Instrumentation; read(): number } {
  const last = new Map<number, number>();
  return {
    instrumentation: { ...noInstrumentation, restoring: (_table, partition, _lag, restored) => void last.set(partition, restored) },
    read: () => [...last.values()].reduce((a, b) => a + b, 0),
  };
}

/** The entries a stopped app left in its local store, over every partition. */
async function storedEntries(dir: string, changelog: string, partitions: number): Promise<number> {
  const store = await LocalStore.open({ dir });
  let n = 0;
  for (let p = 0; p < partitions; p++) n += store.partition(changelog, p, partitions).storedEntries();
  await store.close();
  return n;
}

describe('tables on a persistent local store (stateDir)', () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'stream-store-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('restores only the changelog written since its checkpoint: none after a clean stop, the tail another owner wrote', async () => {
    const broker = new MemoryBroker();
    const topic = unique('clicks');
    const id = unique('counter');
    const dir = tempDir();
    broker.createTopic(topic, 3);
    const keys = Array.from({ length: 600 }, (_, i) => `k${(i * 7) % 41}`);
    const first = countingApp(broker, id, topic, { stateDir: dir });
    await first.app.start();
    await produce(broker, topic, keys.slice(0, 300));
    await settled(broker, id, topic);
    await first.app.stop();
    expect(await storedEntries(dir, first.changelog, 3)).toBe(41);

    // A clean stop checkpointed the changelog's end: the restart reads nothing from it.
    const restart = restoreCounter();
    const second = countingApp(broker, id, topic, { stateDir: dir, instrumentation: restart.instrumentation });
    await second.app.start();
    await eventually(() => expect(second.app.ready).toBe(true));
    await second.app.stop();
    expect(restart.read()).toBe(0);

    // Another instance (memory only) writes 200 entries: the next restart here reads those and no more.
    const other = countingApp(broker, id, topic);
    await other.app.start();
    await produce(broker, topic, keys.slice(300, 500));
    await settled(broker, id, topic);
    await other.app.stop();
    const tail = restoreCounter();
    const third = countingApp(broker, id, topic, { stateDir: dir, instrumentation: tail.instrumentation });
    await third.app.start();
    await produce(broker, topic, keys.slice(500));
    await settled(broker, id, topic);
    await third.app.stop();
    expect(tail.read()).toBe(200);
    expect(broker.messages(first.changelog).length).toBe(600);
    expect(foldChangelog(broker, first.changelog)).toEqual(reference(keys));
    // What the store holds after the stop is the fold too: a memory-only restart agrees with it.
    const last = restoreCounter();
    const check = countingApp(broker, id, topic, { stateDir: dir, instrumentation: last.instrumentation });
    await check.app.start();
    await produce(broker, topic, ['k0']);
    await settled(broker, id, topic);
    await check.app.stop();
    expect(last.read()).toBe(0);
    expect(foldChangelog(broker, first.changelog).get('k0')).toBe(reference(keys).get('k0')! + 1);
  });

  it('stays exact after a crash between writes reaching the store and its next checkpoint (at-least-once)', async () => {
    const broker = new MemoryBroker();
    const topic = unique('clicks');
    const id = unique('counter');
    const dir = tempDir();
    broker.createTopic(topic, 3);
    const keys = Array.from({ length: 450 }, (_, i) => `k${i % 19}`);
    const first = countingApp(broker, id, topic, { stateDir: dir });
    await first.app.start();
    await produce(broker, topic, keys.slice(0, 150));
    await settled(broker, id, topic);
    await first.app.stop(); // checkpoint C at 150 entries
    const crashing = countingApp(broker, id, topic, { stateDir: dir, commitIntervalMs: 60_000 });
    await crashing.app.start();
    await produce(broker, topic, keys.slice(150, 300));
    await eventually(() => expect(broker.messages(first.changelog).length).toBe(300));
    await eventually(() => expect(crashing.app.health().agents[0]!.inFlight).toBe(0));
    await crash(broker, crashing.app);
    // The store took the 150 acknowledged entries, but its checkpoint stayed at C: their offsets never committed.
    expect(await storedEntries(dir, first.changelog, 3)).toBe(19);
    const restart = restoreCounter();
    const second = countingApp(broker, id, topic, { stateDir: dir, instrumentation: restart.instrumentation });
    await second.app.start();
    await produce(broker, topic, keys.slice(300));
    await settled(broker, id, topic);
    await second.app.stop();
    expect(restart.read()).toBe(150); // the tail from C: the store's later entries read again, in order
    // Records redelivered after the crash applied nothing twice.
    expect(foldChangelog(broker, first.changelog)).toEqual(reference(keys));
  });

  it('takes a changelog write into the store only once it is acknowledged (at-least-once): a failed one never', async () => {
    const broker = new MemoryBroker();
    const topic = unique('clicks');
    const id = unique('counter');
    const dir = tempDir();
    broker.createTopic(topic, 1);
    const first = countingApp(broker, id, topic, { stateDir: dir });
    await first.app.start();
    await produce(broker, topic, ['a', 'b', 'a']);
    await settled(broker, id, topic);
    broker.inject('send', (e) => {
      if (e.messages.some((m) => m.topic === first.changelog)) throw new Error('changelog write refused');
    });
    await produce(broker, topic, ['fresh']);
    await eventually(() => expect(first.app.health().state).toBe('failed'));
    await first.app.stop();
    expect(await storedEntries(dir, first.changelog, 1)).toBe(2); // a and b: 'fresh' never reached the changelog
  });

  it('never takes an aborted exactly-once transaction into the store, and restores exactly after it', async () => {
    const broker = new MemoryBroker();
    const topic = unique('clicks');
    const id = unique('counter');
    const dir = tempDir();
    broker.createTopic(topic, 3);
    const keys = Array.from({ length: 300 }, (_, i) => `k${i % 13}`);
    const crashing = countingApp(broker, id, topic, { exactlyOnce: true, stateDir: dir, commitIntervalMs: 60_000 });
    await crashing.app.start();
    await produce(broker, topic, keys.slice(0, 150));
    await eventually(() => expect(crashing.app.health().agents[0]!.inFlight).toBe(0));
    // Every record processed, its changelog entry held for a transaction that never commits.
    await eventually(() => expect(crashing.app.health().partitions.reduce((n, p) => n + p.heldRecords, 0)).toBe(150));
    await crash(broker, crashing.app); // every transaction fails: aborted
    expect(await storedEntries(dir, crashing.changelog, 3)).toBe(0);
    const restart = restoreCounter();
    const second = countingApp(broker, id, topic, { exactlyOnce: true, stateDir: dir, instrumentation: restart.instrumentation });
    await second.app.start();
    await produce(broker, topic, keys.slice(150));
    await settled(broker, id, topic);
    await second.app.stop();
    expect(restart.read()).toBe(0);
    expect(await storedEntries(dir, crashing.changelog, 3)).toBe(13);
    expect(foldChangelog(broker, crashing.changelog)).toEqual(reference(keys));
    // Committed transactions reached the store: a restart reads nothing and counts on from the store.
    const again = restoreCounter();
    const third = countingApp(broker, id, topic, { exactlyOnce: true, stateDir: dir, instrumentation: again.instrumentation });
    await third.app.start();
    await produce(broker, topic, keys.slice(0, 30));
    await settled(broker, id, topic);
    await third.app.stop();
    expect(again.read()).toBe(0);
    expect(foldChangelog(broker, crashing.changelog)).toEqual(reference([...keys, ...keys.slice(0, 30)]));
  });

  it('discards a store whose checkpoint lies past the changelog end (the changelog was reset) and restores in full', async () => {
    const old = new MemoryBroker();
    const topic = unique('clicks');
    const id = unique('counter');
    const dir = tempDir();
    old.createTopic(topic, 3);
    const first = countingApp(old, id, topic, { stateDir: dir });
    await first.app.start();
    await produce(
      old,
      topic,
      Array.from({ length: 90 }, (_, i) => `k${i % 9}`),
    );
    await settled(old, id, topic);
    await first.app.stop();
    // The same group on a cluster whose changelog starts again: a few entries, fewer than the checkpoint.
    const fresh = new MemoryBroker();
    fresh.createTopic(topic, 3);
    const plain = countingApp(fresh, id, topic);
    await plain.app.start();
    await produce(fresh, topic, ['k1', 'k2', 'k3']);
    await settled(fresh, id, topic);
    await plain.app.stop();
    const second = countingApp(fresh, id, topic, { stateDir: dir });
    await second.app.start();
    await produce(fresh, topic, ['k1', 'k5']);
    await settled(fresh, id, topic);
    await second.app.stop();
    expect(foldChangelog(fresh, first.changelog)).toEqual(reference(['k1', 'k2', 'k3', 'k1', 'k5']));
  });

  it('trusts a checkpoint only for its changelog, partition count, offsets and age', async () => {
    const dir = tempDir();
    const store = await LocalStore.open({ dir, maxCheckpointAgeMs: 60_000 });
    const local = store.partition('g-t-changelog', 0, 3);
    const put = (key: string, value: string) => ({ key: Buffer.from(key), value: Buffer.from(value), headers: { [SOURCE_OFFSET_HEADER]: Buffer.from('7') } });
    const fill = async () => {
      local.apply([put('a', '1'), put('', '2'), put('x'.repeat(5000), '3')]);
      await local.checkpoint(10);
    };
    await fill();
    expect(local.storedEntries()).toBe(3);
    expect(local.trusted(9, undefined, 60_000)).toBeUndefined(); // past the end
    expect(local.storedEntries()).toBe(0);
    await fill();
    expect(local.trusted(20, 11, 60_000)).toBeUndefined(); // below the start
    await fill();
    expect(local.trusted(20, undefined, -1)).toBeUndefined(); // too old
    await fill();
    const checkpoint = local.trusted(10, 0, 60_000);
    expect(checkpoint?.offset).toBe(10);
    expect(checkpoint?.appliedOffset).toBe(7);
    const loaded = [...local.messages(checkpoint!)];
    expect(loaded.map((m) => [m.key?.toString(), m.value?.toString()]).sort()).toEqual(
      [
        ['a', '1'],
        ['', '2'],
        ['x'.repeat(5000), '3'],
        [undefined, undefined],
      ].sort(),
    );
    await store.close();
    // The same environment opened for another partition count: not trusted.
    const other = await LocalStore.open({ dir });
    expect(other.partition('g-t-changelog', 0, 4).trusted(10, 0, 60_000)).toBeUndefined();
    await other.close();
  });
});

describe('changelog writes of one partition', () => {
  it('go one produce at a time, in order, whole records of at most 1,000 entries each', async () => {
    const table = new Table('counts', { key: z.string(), value: z.number() });
    const entry = (n: number): OutgoingMessage => ({ topic: 'changelog', partition: 0, key: Buffer.from(`k${n}`), value: Buffer.from(String(n)), headers: {} });
    const produced: number[][] = [];
    let inFlight = 0;
    let release: () => void = () => undefined;
    const produce = (messages: readonly OutgoingMessage[]): Promise<void> => {
      expect(inFlight).toBe(0);
      inFlight += 1;
      produced.push(messages.map((m) => Number(m.value!.toString())));
      return new Promise<void>((resolve) => (release = resolve)).then(() => void (inFlight -= 1));
    };
    // Record 0 goes out alone; 1,500 records of one entry and one record of three queue behind it.
    const acks = [table.write(0, [entry(0)], produce)];
    for (let n = 1; n <= 1500; n++) acks.push(table.write(0, [entry(n)], produce));
    acks.push(table.write(0, [entry(1501), entry(1502), entry(1503)], produce));
    for (let round = 0; round < 3; round++) {
      release();
      await new Promise((resolve) => setImmediate(resolve));
    }
    release();
    await Promise.all(acks);
    expect(produced.map((p) => p.length)).toEqual([1, 1000, 503]);
    expect(produced.flat()).toEqual(Array.from({ length: 1504 }, (_, n) => n));
  });
});
