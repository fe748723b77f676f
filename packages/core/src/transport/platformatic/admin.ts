import type { Admin, consumerGroupDescribeV0 } from '@platformatic/kafka';
import { platformatic } from './client.js';
import { byTopicPartition, groupStateOf, memberInfoText } from '../shared.js';
import type { GroupDescription, PartitionOffset, TopicSpec, TransportAdmin } from '../transport.js';
import type { Cluster } from './cluster.js';
import { hasProtocolError, protocolIds, topicMissing, transportError } from './errors.js';

/** The Kafka API key of ConsumerGroupDescribe (KIP-848 groups). */
const CONSUMER_GROUP_DESCRIBE = 69;

/** Errors of a partition without an acting leader: transient after topic creation or a leader change. */
const TRANSIENT_PARTITION_ERRORS: ReadonlySet<string> = new Set([
  'UNKNOWN_TOPIC_OR_PARTITION',
  'LEADER_NOT_AVAILABLE',
  'NOT_LEADER_OR_FOLLOWER',
  'NOT_LEADER_FOR_PARTITION',
  'UNKNOWN_TOPIC_ID',
]);

/** Runs `fn` again while it fails because a partition has no (acting) leader yet. */
export async function whileTransient<T>(fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      const transient = protocolIds(error).some((t) => TRANSIENT_PARTITION_ERRORS.has(t));
      if (!transient || Date.now() > deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Topics and offsets through the @platformatic/kafka admin client. */
export class PlatformaticAdmin implements TransportAdmin {
  readonly #cluster: Cluster;
  #admin: Admin | undefined;

  constructor(cluster: Cluster) {
    this.#cluster = cluster;
  }

  get #client(): Admin {
    this.#admin ??= new (platformatic().Admin)({ ...this.#cluster.options });
    return this.#admin;
  }

  /** The client connects lazily; connecting here makes an unreachable broker fail now. */
  async connect(): Promise<void> {
    try {
      await this.#client.metadata({ topics: [] });
    } catch (error) {
      throw transportError('admin connect failed', error);
    }
  }

  /**
   * Creates the missing topics, each in its own request (so one that someone else created meanwhile,
   * TOPIC_ALREADY_EXISTS, does not hide the others), then waits until every partition has a leader that
   * answers ListOffsets for it: a KRaft broker names a leader a moment before it acts as one.
   */
  async createTopics(topics: readonly TopicSpec[]): Promise<string[]> {
    try {
      const existing = new Set(await this.#client.listTopics());
      const missing = topics.filter((t) => !existing.has(t.name));
      const created = await Promise.all(
        missing.map(async (t) => {
          try {
            await this.#client.createTopics({
              topics: [t.name],
              partitions: t.partitions,
              replicas: -1,
              ...(t.config ? { configs: Object.entries(t.config).map(([name, value]) => ({ name, value })) } : {}),
            });
          } catch (error) {
            if (protocolIds(error).includes('TOPIC_ALREADY_EXISTS')) return undefined;
            throw error;
          }
          await this.#waitForLeaders(t.name, t.partitions);
          return t.name;
        }),
      );
      return created.filter((name): name is string => name !== undefined);
    } catch (error) {
      throw transportError(`create topics ${topics.map((t) => t.name).join(', ')} failed`, error);
    }
  }

  async #waitForLeaders(topic: string, partitions: number): Promise<void> {
    await whileTransient(async () => {
      const metadata = await this.#client.metadata({ topics: [topic], forceUpdate: true });
      const found = metadata.topics.get(topic);
      if (!found || found.partitionsCount < partitions || found.partitions.some((p) => p.leader < 0))
        throw Object.assign(new Error(`topic ${topic} has no leaders yet`), { apiId: 'LEADER_NOT_AVAILABLE' });
      await this.#listEnd(topic, partitions);
    });
  }

  async #listEnd(topic: string, partitions: number): Promise<PartitionOffset[]> {
    const result = await this.#client.listOffsets({
      topics: [
        {
          name: topic,
          partitions: Array.from({ length: partitions }, (_, partitionIndex) => ({ partitionIndex, timestamp: platformatic().ListOffsetTimestamps.LATEST })),
        },
      ],
    });
    return result
      .flatMap((t) => t.partitions.map((p) => ({ topic, partition: p.partitionIndex, offset: p.offset.toString() })))
      .sort((a, b) => a.partition - b.partition);
  }

  async listTopics(): Promise<string[]> {
    try {
      return await this.#client.listTopics();
    } catch (error) {
      throw transportError('list topics failed', error);
    }
  }

  async #requireTopic(topic: string, action: string): Promise<void> {
    const missing = await this.#cluster.missingTopics([topic], this.#client);
    if (missing.length > 0) throw topicMissing(missing, action);
  }

  async endOffsets(topic: string): Promise<PartitionOffset[]> {
    try {
      await this.#requireTopic(topic, 'end offsets');
      return await whileTransient(async () => {
        const metadata = await this.#client.metadata({ topics: [topic] });
        return this.#listEnd(topic, metadata.topics.get(topic)?.partitionsCount ?? 0);
      }, 5000);
    } catch (error) {
      throw transportError(`end offsets of ${topic} failed`, error, { topic });
    }
  }

  async committedOffsets(groupId: string, topic: string): Promise<PartitionOffset[]> {
    try {
      await this.#requireTopic(topic, 'committed offsets');
      const metadata = await this.#client.metadata({ topics: [topic] });
      const count = metadata.topics.get(topic)?.partitionsCount ?? 0;
      // requireStable: offsets of a transaction still open (KIP-447) are not answered (UNSTABLE_OFFSET_COMMIT,
      // retried) until it commits or aborts, so an exactly-once claim never starts from an offset about to move.
      const groups = await this.#client.listConsumerGroupOffsets({
        groups: [{ groupId, topics: [{ name: topic, partitionIndexes: Array.from({ length: count }, (_, i) => i) }] }],
        requireStable: true,
      });
      return groups
        .flatMap((g) =>
          g.topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partitionIndex, offset: p.committedOffset.toString() }))),
        )
        .filter((p) => p.topic === topic && p.offset !== '-1')
        .sort((a, b) => a.partition - b.partition);
    } catch (error) {
      throw transportError(`committed offsets of group ${groupId} on ${topic} failed`, error, { groupId, topic });
    }
  }

  /** DescribeGroups: the client decodes each member's subscription (userData) and assignment. */
  async describeGroup(groupId: string): Promise<GroupDescription> {
    try {
      const group = (await this.#client.describeGroups({ groups: [groupId] })).get(groupId);
      // DescribeGroups describes classic groups only: a KIP-848 group (groupProtocol 'consumer') looks empty there.
      if (!group || group.members.size === 0) {
        const consumerGroup = await this.#describeConsumerGroup(groupId);
        if (consumerGroup) return consumerGroup;
      }
      if (!group) return { groupId, state: 'empty', members: [] };
      const state = groupStateOf(group.state);
      const members = [...group.members.values()].map((m) => ({
        memberId: m.id,
        clientId: m.clientId,
        memberInfo: memberInfoText(m.metadata?.metadata === undefined ? undefined : Buffer.from(m.metadata.metadata)),
        assignment:
          state === 'stable'
            ? [...(m.assignments?.values() ?? [])].flatMap((a) => a.partitions.map((partition) => ({ topic: a.topic, partition }))).sort(byTopicPartition)
            : [],
      }));
      return { groupId, state, members };
    } catch (error) {
      throw transportError(`describe group ${groupId} failed`, error, { groupId });
    }
  }

  /**
   * A KIP-848 group through ConsumerGroupDescribe on its coordinator: members, their current assignment (while
   * stable) and no memberInfo (the protocol has no user data). Undefined when the group is not one, or the
   * broker has no such API.
   */
  async #describeConsumerGroup(groupId: string): Promise<GroupDescription | undefined> {
    const apis = await this.#client.listApis();
    if (!apis.some((a) => a.apiKey === CONSUMER_GROUP_DESCRIBE)) return undefined;
    const findCoordinator =
      (apis.find((a) => a.apiKey === 10)?.maxVersion ?? 0) >= 6 ? platformatic().findCoordinatorV6.api : platformatic().findCoordinatorV4.api;
    const metadata = await this.#client.metadata({ topics: [] });
    const any = await this.#client.connections.getFirstAvailable([...metadata.brokers.values()]);
    const coordinator = (await findCoordinator.async(any, 0, [groupId])).coordinators[0];
    if (!coordinator) return undefined;
    const connection = await this.#client.connections.get({ host: coordinator.host, port: coordinator.port });
    let described: consumerGroupDescribeV0.ConsumerGroupDescribeResponseGroup | undefined;
    try {
      described = (await platformatic().consumerGroupDescribeV0.api.async(connection, [groupId], false)).groups[0];
    } catch (error) {
      // A classic group, or no group at all.
      if (hasProtocolError(error, 'GROUP_ID_NOT_FOUND')) return undefined;
      throw error;
    }
    if (!described) return undefined;
    const state = groupStateOf(described.groupState);
    return {
      groupId,
      state,
      members: described.members.map((m) => ({
        memberId: m.memberId,
        clientId: m.clientId,
        memberInfo: undefined,
        assignment:
          state === 'stable'
            ? m.assignment.topicPartitions.flatMap((t) => t.partitions.map((partition) => ({ topic: t.topicName, partition }))).sort(byTopicPartition)
            : [],
      })),
    };
  }

  async disconnect(): Promise<void> {
    const admin = this.#admin;
    this.#admin = undefined;
    try {
      await admin?.close();
    } catch (error) {
      throw transportError('admin disconnect failed', error);
    }
  }
}
