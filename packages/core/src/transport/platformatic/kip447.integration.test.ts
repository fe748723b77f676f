/**
 * KIP-447 on the @platformatic/kafka transport: transactional offsets sent with the group's generation and
 * member id are checked by the coordinator, so a member that lost its generation (a zombie) cannot commit
 * the group's offsets, while offsets sent without them (what `sendOffsets` and the kafkajs transport do)
 * are accepted from anyone. Local broker (`pnpm stack up`, KAFKA_BROKERS).
 */
import { deleteTopics, localServers, requireServers, uniqueName } from '@stream/local-stack';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsumerProbe } from '../contract/consumer-probe.js';
import { emptyRawHeaders, type ConsumerOptions, type PartitionOffset, type TransportAdmin } from '../transport.js';
import type { PlatformaticConsumer, PlatformaticTransaction } from './index.js';
import { PlatformaticTransport } from './index.js';

const transport = new PlatformaticTransport({ brokers: [...localServers().kafkaBrokers], clientId: 'kip447-test' });
const topics: string[] = [];

/** Waits until the group's committed offsets are `expected` (a transactional commit becomes visible shortly after EndTxn). */
async function committedBecome(admin: TransportAdmin, groupId: string, topic: string, expected: PartitionOffset[]): Promise<void> {
  let last: PartitionOffset[] = [];
  const deadline = Date.now() + 30_000;
  while (JSON.stringify((last = await admin.committedOffsets(groupId, topic))) !== JSON.stringify(expected)) {
    if (Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  expect(last).toEqual(expected);
}

/** Waits for `condition`; the bound only fails a hung test, nothing is decided by time. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

beforeAll(() => requireServers('kafka'));
afterAll(() => deleteTopics(topics));

describe('platformatic transport: transactional offsets with the group metadata (KIP-447, #19)', () => {
  it("refuses a zombie member's transactional offset commit once the group moved to a new generation", async () => {
    const input = uniqueName('kip447-in');
    const output = uniqueName('kip447-out');
    topics.push(input, output);
    const admin = transport.admin();
    await admin.connect();
    await admin.createTopics([
      { name: input, partitions: 2 },
      { name: output, partitions: 1 },
    ]);
    const groupId = uniqueName('kip447-group');
    const options: ConsumerOptions = {
      groupId,
      topics: [input],
      fromBeginning: true,
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 300,
      rebalanceTimeoutMs: 10_000,
      readCommitted: true,
      maxBytesPerPartition: 1024 * 1024,
    };
    const a = transport.consumer(options) as PlatformaticConsumer;
    const probeA = new ConsumerProbe();
    await a.start(probeA);
    const producer = transport.producer({ transactionalId: uniqueName('kip447-tx') });
    await producer.connect();
    const offsets = (offset: string): PartitionOffset[] => [{ topic: input, partition: 0, offset }];
    const message = { topic: output, key: null, value: Buffer.from('out'), headers: emptyRawHeaders() };
    try {
      const first = a.groupMetadata();
      if (!first) throw new Error('a joined the group but has no group metadata');
      const tx1 = (await producer.transaction()) as PlatformaticTransaction;
      await tx1.send([message]);
      await tx1.sendOffsets(groupId, offsets('3'), first);
      await tx1.commit();
      await committedBecome(admin, groupId, input, offsets('3'));

      // B joins: the group moves to a new generation and `first` belongs to a zombie.
      const b = transport.consumer(options);
      const probeB = new ConsumerProbe();
      await b.start(probeB);
      try {
        await until(() => probeA.assignment.generation > (probeA.assignments[0]?.generation ?? 0) && probeB.assignment.partitions.length > 0, 'the rebalance');
        const zombie = (await producer.transaction()) as PlatformaticTransaction;
        await zombie.send([message]);
        await expect(zombie.sendOffsets(groupId, offsets('5'), first)).rejects.toMatchObject({
          code: 'TRANSPORT_FAILED',
          context: { kafkaError: 'ILLEGAL_GENERATION', groupFenced: true },
        });
        await zombie.abort();
        expect(await admin.committedOffsets(groupId, input)).toEqual(offsets('3'));

        // The current generation's metadata is accepted…
        const current = (await producer.transaction()) as PlatformaticTransaction;
        await current.sendOffsets(groupId, offsets('7'), a.groupMetadata());
        await current.commit();
        await committedBecome(admin, groupId, input, offsets('7'));
        // …and without metadata (sendOffsets, as on kafkajs) the broker cannot tell a zombie: accepted.
        const unchecked = (await producer.transaction()) as PlatformaticTransaction;
        await unchecked.sendOffsets(groupId, offsets('9'));
        await unchecked.commit();
        await committedBecome(admin, groupId, input, offsets('9'));
      } finally {
        await b.stop();
      }
      expect(probeA.crashes).toEqual([]);
    } finally {
      await producer.disconnect();
      await a.stop();
      await admin.disconnect();
    }
  });
});
