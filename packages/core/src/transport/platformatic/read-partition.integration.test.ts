/**
 * `readPartition` on the @platformatic/kafka transport, beyond the contract suite's cases: one batch per fetch
 * (an aborted transaction whose abort marker comes several responses later), the same records as the kafkajs
 * transport's read, and an abort while a fetch waits at the broker. Local broker (`pnpm stack up`, KAFKA_BROKERS).
 */
import { deleteTopics, localServers, requireServers, uniqueName } from '@stream/local-stack';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaTransport } from '../kafka/index.js';
import { emptyRawHeaders, type OutgoingMessage, type RawMessage, type Transport, type TransportProducer } from '../transport.js';
import { Cluster } from './cluster.js';
import { PlatformaticTransport } from './index.js';
import { readPlatformaticPartition } from './read-partition.js';

const brokers = [...localServers().kafkaBrokers];
const transport = new PlatformaticTransport({ brokers, clientId: 'read-partition-test' });
const topics: string[] = [];
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(() => requireServers('kafka'));
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  await deleteTopics(topics);
});

async function topic(prefix: string): Promise<string> {
  const name = uniqueName(prefix);
  topics.push(name);
  const admin = transport.admin();
  await admin.connect();
  try {
    await admin.createTopics([{ name, partitions: 1 }]);
  } finally {
    await admin.disconnect();
  }
  return name;
}

async function producer(transactionalId?: string): Promise<TransportProducer> {
  const p = transport.producer(transactionalId === undefined ? {} : { transactionalId });
  cleanups.push(() => p.disconnect());
  await p.connect();
  return p;
}

const message = (name: string, value: string): OutgoingMessage => ({
  topic: name,
  key: Buffer.from(value),
  value: Buffer.from(value),
  headers: emptyRawHeaders(),
  partition: 0,
});

async function endOffset(name: string): Promise<number> {
  const admin = transport.admin();
  await admin.connect();
  try {
    return Number((await admin.endOffsets(name))[0]?.offset ?? '0');
  } finally {
    await admin.disconnect();
  }
}

/** What a read of partition 0 delivers: every batch handed to onMessages. */
async function read(
  via: (options: Parameters<NonNullable<Transport['readPartition']>>[0]) => Promise<void>,
  name: string,
  end: number,
): Promise<RawMessage[][]> {
  const batches: RawMessage[][] = [];
  await via({ topic: name, partition: 0, end, signal: new AbortController().signal, onMessages: (messages) => batches.push([...messages]) });
  return batches;
}

describe('platformatic transport: readPartition (#19)', () => {
  it('one batch per fetch: drops an aborted transaction whose abort marker comes responses later, and reads what kafkajs reads', async () => {
    const name = await topic('read-partition-batches');
    const plain = await producer();
    const tx = await producer(uniqueName('read-partition-tx'));
    const inTransaction = async (values: readonly string[], outcome: 'commit' | 'abort') => {
      const t = await tx.transaction();
      // One send per value: a record batch each.
      for (const v of values) await t.send([message(name, v)]);
      await (outcome === 'commit' ? t.commit() : t.abort());
    };
    await plain.send([message(name, 'p-0')]);
    await inTransaction(['c-0', 'c-1', 'c-2'], 'commit');
    // Interleaved with another producer's records, so that the aborted range spans batches that are kept.
    const aborting = await tx.transaction();
    await aborting.send([message(name, 'x-0')]);
    await plain.send([message(name, 'p-1')]);
    await aborting.send([message(name, 'x-1')]);
    await plain.send([message(name, 'p-2')]);
    await aborting.abort();
    await inTransaction(['c-3'], 'commit');
    await inTransaction(['x-2', 'x-3'], 'abort');
    await plain.send([message(name, 'p-3')]);
    await inTransaction(['c-4'], 'commit');
    const end = await endOffset(name);
    const expected = ['p-0', 'c-0', 'c-1', 'c-2', 'p-1', 'p-2', 'c-3', 'p-3', 'c-4'];

    // maxBytes 1: the broker answers each fetch with the one batch at the position (KIP-74).
    const cluster = new Cluster({ clientId: 'read-partition-test', bootstrapBrokers: brokers });
    const small = await read((o) => readPlatformaticPartition(cluster, { fetchMaxWaitMs: 100, maxFailures: 3, maxBytes: 1 }, o), name, end);
    expect(small.flat().map((m) => m.value?.toString())).toEqual(expected);
    expect(small.length).toBeGreaterThanOrEqual(expected.length);
    const offsets = small.flat().map((m) => Number(m.offset));
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));

    const whole = await read((o) => transport.readPartition(o), name, end);
    expect(whole.flat().map((m) => m.value?.toString())).toEqual(expected);
    expect(whole.flat().map((m) => m.offset)).toEqual(offsets.map(String));

    const kafkajs = new KafkaTransport({ brokers, clientId: 'read-partition-test', logLevel: 'nothing' });
    const viaKafkajs = await read((o) => kafkajs.readPartition(o), name, end);
    expect(viaKafkajs.flat().map((m) => [m.offset, m.value?.toString(), m.key?.toString()])).toEqual(
      whole.flat().map((m) => [m.offset, m.value?.toString(), m.key?.toString()]),
    );
  }, 120_000);

  it('an abort while a fetch waits at the broker for records not written yet rejects at once with the reason', async () => {
    const name = await topic('read-partition-wait');
    const plain = await producer();
    await plain.send(['a', 'b', 'c'].map((v) => message(name, v)));
    const controller = new AbortController();
    const seen: string[] = [];
    // A long fetch wait: the abort must not wait for the fetch in flight.
    const waiting = new PlatformaticTransport({ brokers, clientId: 'read-partition-test', fetchMaxWaitMs: 10_000 });
    const reading = waiting.readPartition({
      topic: name,
      partition: 0,
      end: 10,
      signal: controller.signal,
      onMessages: (messages) => seen.push(...messages.map((m) => m.value!.toString())),
    });
    const deadline = Date.now() + 30_000;
    while (seen.length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(seen).toEqual(['a', 'b', 'c']);
    const reason = new Error('revoked');
    const abortedAt = Date.now();
    controller.abort(reason);
    await expect(reading).rejects.toBe(reason);
    expect(Date.now() - abortedAt).toBeLessThan(1000);
  }, 60_000);
});
