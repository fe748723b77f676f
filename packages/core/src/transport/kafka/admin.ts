import { AssignerProtocol, type Admin } from 'kafkajs';
import { byTopicPartition, groupStateOf, memberInfoText } from '../shared.js';
import type { GroupDescription, GroupMemberDescription, PartitionOffset, TopicPartition, TopicSpec, TransportAdmin } from '../transport.js';
import type { Cluster } from './cluster.js';
import { protocolTypes, topicMissing, transportError } from './errors.js';

/** Errors of a partition without an acting leader: transient after topic creation or a leader change. */
const TRANSIENT_PARTITION_ERRORS: ReadonlySet<string> = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE', 'NOT_LEADER_FOR_PARTITION']);

/** Topics and offsets through the kafkajs admin client. */
export class KafkaAdmin implements TransportAdmin {
  readonly #cluster: Cluster;
  readonly #admin: Admin;

  constructor(cluster: Cluster) {
    this.#cluster = cluster;
    this.#admin = cluster.kafka.admin();
  }

  async connect(): Promise<void> {
    try {
      await this.#admin.connect();
    } catch (error) {
      throw transportError('admin connect failed', error);
    }
  }

  /**
   * Creates the missing topics, each in its own request: kafkajs' createTopics returns `false` when any
   * topic already existed and then skips waiting for the leaders of the ones it did create, so one
   * request per topic tells exactly which were created. We wait for the leaders ourselves: kafkajs'
   * `waitForLeaders` only tolerates LEADER_NOT_AVAILABLE (admin/index.js retryOnLeaderNotAvailable), but
   * a KRaft broker answers UNKNOWN_TOPIC_OR_PARTITION until the new topic reached its metadata, and kafkajs
   * then rejects createTopics although the topic was created; and a leader in the metadata is not yet
   * a leader that serves the partition (see #waitForLeaders).
   */
  async createTopics(topics: readonly TopicSpec[]): Promise<string[]> {
    try {
      const existing = new Set(await this.#admin.listTopics());
      const missing = topics.filter((t) => !existing.has(t.name));
      const created = await Promise.all(
        missing.map(async (t) => {
          const made = await this.#admin.createTopics({
            waitForLeaders: false,
            topics: [
              {
                topic: t.name,
                numPartitions: t.partitions,
                ...(t.config ? { configEntries: Object.entries(t.config).map(([name, value]) => ({ name, value })) } : {}),
              },
            ],
          });
          if (!made) return undefined; // created by someone else meanwhile
          await this.#waitForLeaders(t.name);
          return t.name;
        }),
      );
      return created.filter((name): name is string => name !== undefined);
    } catch (error) {
      throw transportError(`create topics ${topics.map((t) => t.name).join(', ')} failed`, error);
    }
  }

  /**
   * Waits until a new topic can be used: every partition has a leader in the metadata and that leader
   * answers for it. On KRaft the metadata can name a leader a moment before the broker acts as one
   * (ListOffsets then fails with NOT_LEADER_FOR_PARTITION), so we check both.
   */
  async #waitForLeaders(topic: string): Promise<void> {
    await this.#whileTransient(async () => {
      const { topics } = await this.#admin.fetchTopicMetadata({ topics: [topic] });
      const partitions = topics.find((t) => t.name === topic)?.partitions ?? [];
      if (partitions.length === 0 || partitions.some((p) => p.leader < 0))
        throw Object.assign(new Error(`topic ${topic} has no leaders yet`), { type: 'LEADER_NOT_AVAILABLE' });
      await this.#topicOffsets(topic);
    });
  }

  /**
   * kafkajs' fetchTopicOffsets, with one more transient case: it destructures the first topic of each
   * ListOffsets answer, and there is none while its own cached metadata knows no leader for a new topic's
   * partitions (a TypeError, "Cannot destructure property 'partitions' of 'low.pop(...)'", seen right
   * after createTopics on KRaft). That is a partition without a leader yet: tried again like one.
   */
  async #topicOffsets(topic: string): ReturnType<Admin['fetchTopicOffsets']> {
    try {
      return await this.#admin.fetchTopicOffsets(topic);
    } catch (error) {
      if (error instanceof TypeError && /\.pop\(\.\.\.\)/.test(error.message)) {
        throw Object.assign(new Error(`topic ${topic}: no leader known yet for its offsets`, { cause: error }), { type: 'LEADER_NOT_AVAILABLE' });
      }
      throw error;
    }
  }

  /**
   * Runs `fn` again while it fails with a partition that has no (acting) leader yet: right after topic
   * creation or a leader change. kafkajs' admin retries some of these itself but bails on others, e.g.
   * fetchTopicOffsets on NOT_LEADER_FOR_PARTITION (admin/index.js fetchTopicOffsets).
   */
  async #whileTransient<T>(fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await fn();
      } catch (error) {
        const transient = protocolTypes(error).some((t) => TRANSIENT_PARTITION_ERRORS.has(t));
        if (!transient || Date.now() > deadline) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  async listTopics(): Promise<string[]> {
    try {
      return await this.#admin.listTopics();
    } catch (error) {
      throw transportError('list topics failed', error);
    }
  }

  async #requireTopic(topic: string, action: string): Promise<void> {
    // kafkajs retries metadata for a missing topic before failing; ask for the list instead.
    const missing = await this.#cluster.missingTopics([topic], this.#admin);
    if (missing.length > 0) throw topicMissing(missing, action);
  }

  async endOffsets(topic: string): Promise<PartitionOffset[]> {
    try {
      await this.#requireTopic(topic, 'end offsets');
      const offsets = await this.#whileTransient(() => this.#topicOffsets(topic), 5000);
      return offsets.map((o) => ({ topic, partition: o.partition, offset: o.high })).sort((a, b) => a.partition - b.partition);
    } catch (error) {
      throw transportError(`end offsets of ${topic} failed`, error, { topic });
    }
  }

  async committedOffsets(groupId: string, topic: string): Promise<PartitionOffset[]> {
    try {
      await this.#requireTopic(topic, 'committed offsets');
      const result = await this.#admin.fetchOffsets({ groupId, topics: [topic] });
      return result
        .flatMap((t) => t.partitions.map((p) => ({ topic: t.topic, partition: p.partition, offset: p.offset })))
        .filter((p) => p.offset !== '-1' && p.offset !== '')
        .sort((a, b) => a.partition - b.partition);
    } catch (error) {
      throw transportError(`committed offsets of group ${groupId} on ${topic} failed`, error, { groupId, topic });
    }
  }

  /**
   * DescribeGroups, with each member's subscription metadata and assignment decoded as the consumer
   * protocol writes them (kafkajs' AssignerProtocol; other clients of a `consumer` group write the same
   * layout). A member whose bytes cannot be decoded is listed without memberInfo and assignment.
   */
  async describeGroup(groupId: string): Promise<GroupDescription> {
    try {
      const { groups } = await this.#admin.describeGroups([groupId]);
      const group = groups.find((g) => g.groupId === groupId);
      if (!group) return { groupId, state: 'empty', members: [] };
      const state = groupStateOf(group.state);
      const consumer = group.protocolType === 'consumer';
      const members = group.members.map((m): GroupMemberDescription => {
        let memberInfo: string | undefined;
        let assignment: TopicPartition[] = [];
        if (consumer) {
          try {
            memberInfo = memberInfoText(m.memberMetadata.length > 0 ? AssignerProtocol.MemberMetadata.decode(m.memberMetadata)?.userData : undefined);
            const decoded = state === 'stable' && m.memberAssignment.length > 0 ? AssignerProtocol.MemberAssignment.decode(m.memberAssignment) : null;
            assignment = Object.entries(decoded?.assignment ?? {})
              .flatMap(([topic, partitions]) => partitions.map((partition) => ({ topic, partition })))
              .sort(byTopicPartition);
          } catch {
            // Not the consumer protocol's layout: the member is listed, without what it would have said.
          }
        }
        return { memberId: m.memberId, clientId: m.clientId, memberInfo, assignment };
      });
      return { groupId, state, members };
    } catch (error) {
      throw transportError(`describe group ${groupId} failed`, error, { groupId });
    }
  }

  async disconnect(): Promise<void> {
    try {
      await this.#admin.disconnect();
    } catch (error) {
      throw transportError('admin disconnect failed', error);
    }
  }
}
