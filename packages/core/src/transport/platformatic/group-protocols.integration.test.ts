/**
 * Both consumer group protocols of the @platformatic/kafka transport under membership churn, on the local
 * broker (Kafka 4.x: `pnpm stack up`, KAFKA_BROKERS): `classic` (eager JoinGroup/SyncGroup) and `consumer`
 * (KIP-848, incremental revocation). Members join and leave while records keep coming; each member commits
 * what it accepted when it hears onRevoking and before it stops, as the runtime does. Checked: no partition
 * is owned by two members at once (a member owns a partition from the onAssignment listing it until its next
 * onRevoking, onAssignment without it, or its stop), no record is lost (every record produced is accepted
 * by the member owning its partition at the time) and the group's committed offsets end at the log end.
 */
import { Admin, consumerGroupHeartbeatV1, findCoordinatorV6 } from '@platformatic/kafka';
import { deleteTopics, localServers, requireServers, uniqueName } from '@stream/local-stack';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsumerProbe } from '../contract/consumer-probe.js';
import { tpKey } from '../shared.js';
import {
  emptyRawHeaders,
  type Assignment,
  type ConsumerListener,
  type ConsumerOptions,
  type FetchedBatch,
  type GroupDescription,
  type PartitionOffset,
  type TransportConsumer,
} from '../transport.js';
import { PlatformaticTransport, type GroupProtocol, type PlatformaticConsumer } from './index.js';

const PARTITIONS = 6;
const topics: string[] = [];

beforeAll(() => requireServers('kafka'));
afterAll(() => deleteTopics(topics));

/** A span of time during which one member owned one partition. */
interface Ownership {
  readonly member: string;
  readonly key: string;
  readonly from: number;
  to: number | undefined;
}

/** Ownership spans of every member, on one clock (this process). */
class Ledger {
  readonly spans: Ownership[] = [];
  #tick = 0;

  /** A strictly increasing timestamp: two events never share one. */
  now(): number {
    this.#tick = Math.max(this.#tick + 1e-3, performance.now());
    return this.#tick;
  }

  open(member: string): Ownership[] {
    return this.spans.filter((s) => s.member === member && s.to === undefined);
  }

  /** Pairs of spans of one partition held by two members at the same time. */
  overlaps(): [Ownership, Ownership][] {
    const found: [Ownership, Ownership][] = [];
    for (const a of this.spans)
      for (const b of this.spans)
        if (a !== b && a.key === b.key && a.member < b.member && a.from < (b.to ?? Infinity) && b.from < (a.to ?? Infinity)) found.push([a, b]);
    return found;
  }
}

/** A member as the runtime would be: it accepts everything of the partitions it owns and commits in onRevoking and at stop. */
class ChurnMember implements ConsumerListener {
  readonly name: string;
  readonly #ledger: Ledger;
  readonly #topic: string;
  consumer!: TransportConsumer;
  /** Values accepted while owning their partition. */
  readonly values: string[] = [];
  /** Next offset per partition key, of what was accepted while owned. */
  readonly #positions = new Map<string, number>();
  readonly crashes: Error[] = [];
  readonly generations: number[] = [];

  constructor(name: string, ledger: Ledger, topic: string) {
    this.name = name;
    this.#ledger = ledger;
    this.#topic = topic;
  }

  get owned(): number[] {
    return this.#ledger.open(this.name).map((s) => Number(s.key.split('\u0000')[1]));
  }

  onAssignment(assignment: Assignment): void {
    this.generations.push(assignment.generation);
    const now = this.#ledger.now();
    const next = new Set(assignment.partitions.map((p) => tpKey(p.topic, p.partition)));
    for (const span of this.#ledger.open(this.name)) if (!next.has(span.key) || assignment.rejoined) span.to = now;
    const open = new Set(this.#ledger.open(this.name).map((s) => s.key));
    for (const key of next) if (!open.has(key)) this.#ledger.spans.push({ member: this.name, key, from: now, to: undefined });
    // A partition newly owned is read from the group's committed offset: positions of earlier spans are stale.
    for (const key of this.#positions.keys()) if (!open.has(key)) this.#positions.delete(key);
  }

  onBatch(batch: FetchedBatch): number {
    const key = tpKey(batch.topic, batch.partition);
    if (!this.#ledger.open(this.name).some((s) => s.key === key)) return 0;
    for (const m of batch.messages) this.values.push(m.value?.toString() ?? '');
    const last = batch.messages.at(-1);
    if (last) this.#positions.set(key, Number(last.offset) + 1);
    return batch.messages.length;
  }

  onRevoking(): Promise<void> {
    // The runtime commits what it finished, while the partitions are still this member's.
    const commit = this.commit();
    const now = this.#ledger.now();
    for (const span of this.#ledger.open(this.name)) span.to = now;
    return commit;
  }

  onCrash(error: Error): void {
    this.crashes.push(error);
  }

  commit(): Promise<void> {
    const owned = new Set(this.#ledger.open(this.name).map((s) => s.key));
    const offsets: PartitionOffset[] = [...this.#positions]
      .filter(([key]) => owned.has(key))
      .map(([key, offset]) => ({ topic: this.#topic, partition: Number(key.split('\u0000')[1]), offset: String(offset) }));
    return offsets.length === 0 ? Promise.resolve() : this.consumer.commit(offsets);
  }

  async stop(): Promise<void> {
    await this.commit();
    const now = this.#ledger.now();
    for (const span of this.#ledger.open(this.name)) span.to = now;
    await this.consumer.stop();
  }
}

async function until(condition: () => boolean, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('platformatic transport: consumer group protocols under membership churn (#19)', () => {
  for (const groupProtocol of ['classic', 'consumer'] satisfies GroupProtocol[]) {
    it(`${groupProtocol}: members join and leave while records flow; no partition has two owners, no record is lost`, { timeout: 240_000 }, async () => {
      const transport = new PlatformaticTransport({ brokers: [...localServers().kafkaBrokers], clientId: `churn-${groupProtocol}`, groupProtocol });
      const topic = uniqueName(`churn-${groupProtocol}`);
      topics.push(topic);
      const admin = transport.admin();
      await admin.connect();
      await admin.createTopics([{ name: topic, partitions: PARTITIONS }]);
      const producer = transport.producer();
      await producer.connect();
      const members: ChurnMember[] = [];
      const ledger = new Ledger();
      const groupId = uniqueName(`churn-${groupProtocol}-group`);
      const options: ConsumerOptions = {
        groupId,
        topics: [topic],
        fromBeginning: true,
        sessionTimeoutMs: 10_000,
        heartbeatIntervalMs: 300,
        rebalanceTimeoutMs: 10_000,
        readCommitted: true,
        maxBytesPerPartition: 64 * 1024,
      };
      const start = async (name: string): Promise<ChurnMember> => {
        const member = new ChurnMember(name, ledger, topic);
        member.consumer = transport.consumer(options);
        members.push(member);
        await member.consumer.start(member);
        return member;
      };
      const sent: string[] = [];
      let producing = true;
      const produce = (async () => {
        for (let round = 0; producing; round++) {
          const values = Array.from({ length: PARTITIONS }, (_, partition) => `r${round}-p${partition}`);
          await producer.send(values.map((v, partition) => ({ topic, key: null, value: Buffer.from(v), headers: emptyRawHeaders(), partition })));
          sent.push(...values);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })();
      const live = new Set<ChurnMember>();
      const settled = (what: string): Promise<void> =>
        until(() => {
          const owned = [...live].map((m) => m.owned);
          return (
            owned.every((o) => o.length > 0) &&
            owned
              .flat()
              .sort((x, y) => x - y)
              .join() === Array.from({ length: PARTITIONS }, (_, p) => p).join()
          );
        }, what);
      try {
        live.add(await start('a'));
        await settled('a alone to own every partition');
        live.add(await start('b'));
        await settled('a and b to share the partitions');
        const c = await start('c');
        live.add(c);
        await settled('a, b and c to share the partitions');
        const b = members[1];
        if (!b) throw new Error('b missing');
        live.delete(b);
        await b.stop();
        await settled('a and c to share the partitions after b left');
        live.add(await start('d'));
        await settled('a, c and d to share the partitions');
        live.delete(c);
        await c.stop();
        await settled('a and d to share the partitions after c left');
        producing = false;
        await produce;
        const accepted = (): Set<string> => new Set(members.flatMap((m) => m.values));
        await until(() => sent.every((v) => accepted().has(v)), 'every record produced to be accepted by an owner');
        for (const m of live) await m.commit();
        const ends = await admin.endOffsets(topic);
        expect(await admin.committedOffsets(groupId, topic)).toEqual(ends);
        expect(ledger.overlaps()).toEqual([]);
        // The coordinator describes the live members holding those partitions (a KIP-848 group through
        // ConsumerGroupDescribe: DescribeGroups describes classic groups only).
        const held = [...live].map((m) => m.owned.sort((x, y) => x - y).join()).sort();
        let described: GroupDescription | undefined;
        for (const deadline = Date.now() + 30_000; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 100))) {
          described = await admin.describeGroup(groupId);
          if (
            described.state === 'stable' &&
            described.members
              .map((m) => m.assignment.map((p) => p.partition).join())
              .sort()
              .join('|') === held.join('|')
          )
            break;
        }
        expect(described?.state).toBe('stable');
        expect(described?.members.map((m) => m.assignment.map((p) => p.partition).join()).sort()).toEqual(held);
        const duplicates = members.flatMap((m) => m.values).length - accepted().size;
        // Reported, not pinned: a record accepted after the last commit of a member that lost its partition is read again by the next owner.
        console.log(`${groupProtocol}: ${sent.length} records, ${duplicates} delivered twice, ${ledger.spans.length} ownership spans`);
        for (const m of members) expect(m.crashes).toEqual([]);
        // Every assignment is a new generation, for every member.
        for (const m of members) expect(m.generations).toEqual([...new Set(m.generations)].sort((x, y) => x - y));
      } finally {
        producing = false;
        await produce.catch(() => undefined);
        for (const m of live) await m.consumer.stop().catch(() => undefined);
        await producer.disconnect();
        await admin.disconnect();
      }
    });
  }

  it('consumer: a member the coordinator removed rejoins with epoch 0 and the same id, and hears rejoined: true', async () => {
    const brokers = [...localServers().kafkaBrokers];
    const transport = new PlatformaticTransport({ brokers, clientId: 'kip848-fenced', groupProtocol: 'consumer' });
    const topic = uniqueName('kip848-fenced');
    topics.push(topic);
    const admin = transport.admin();
    await admin.connect();
    const raw = new Admin({ clientId: 'kip848-fenced-remover', bootstrapBrokers: brokers });
    const groupId = uniqueName('kip848-fenced-group');
    const consumer = transport.consumer({
      groupId,
      topics: [topic],
      fromBeginning: true,
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 300,
      rebalanceTimeoutMs: 10_000,
      readCommitted: true,
      maxBytesPerPartition: 1024 * 1024,
    }) as PlatformaticConsumer;
    const probe = new ConsumerProbe();
    try {
      await admin.createTopics([{ name: topic, partitions: 2 }]);
      await consumer.start(probe);
      const first = probe.assignment;
      expect(first.partitions).toEqual([0, 1].map((partition) => ({ topic, partition })));
      const memberId = consumer.groupMetadata()?.memberId;
      if (memberId === undefined) throw new Error('the member has an assignment but no group metadata');
      // What the coordinator does to a member whose session expired: it removes it (here by a leave heartbeat,
      // epoch -1, sent for it by another client). Its next heartbeat is answered UNKNOWN_MEMBER_ID.
      const metadata = await raw.metadata({ topics: [] });
      const any = await raw.connections.getFirstAvailable([...metadata.brokers.values()]);
      const coordinator = (await findCoordinatorV6.api.async(any, 0, [groupId])).coordinators[0];
      if (!coordinator) throw new Error('no coordinator');
      const connection = await raw.connections.get({ host: coordinator.host, port: coordinator.port });
      await consumerGroupHeartbeatV1.api.async(connection, groupId, memberId, -1, null, null, 0, [], null, null, []);
      await until(() => probe.assignments.some((a) => a.rejoined === true), 'the member to rejoin', 30_000);
      const rejoined = probe.assignment;
      expect(rejoined).toMatchObject({ rejoined: true, partitions: first.partitions });
      expect(rejoined.generation).toBeGreaterThan(first.generation);
      expect(consumer.groupMetadata()?.memberId).toBe(memberId);
      // No onRevoking: nothing it committed after the removal could have counted.
      expect(probe.events.filter((e) => e.kind !== 'batch').map((e) => e.kind)).toEqual(['assignment', 'assignment']);
      // Its commits count again under the new epoch.
      await consumer.commit([{ topic, partition: 1, offset: '0' }]);
      expect(await admin.committedOffsets(groupId, topic)).toEqual([{ topic, partition: 1, offset: '0' }]);
      expect(probe.crashes).toEqual([]);
    } finally {
      await consumer.stop();
      await raw.close();
      await admin.disconnect();
    }
  });
});
