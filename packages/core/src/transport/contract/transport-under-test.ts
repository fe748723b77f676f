import type { Transport } from '../transport.js';

/**
 * What the contract suite needs from one transport implementation. A factory returns a fresh one per
 * test, so tests never share topics, groups or transactional ids and may run concurrently.
 */
export interface TransportUnderTest {
  readonly transport: Transport;
  /** Creates a topic no other test uses, waits until it can be produced to and consumed, and returns its name. */
  createTopic(prefix: string, partitions: number): Promise<string>;
  /** A group id or transactional id no other test uses. */
  uniqueName(prefix: string): string;
  /**
   * The longest a single awaited step may take before the test fails (a group join on Kafka takes
   * seconds, the memory transport needs milliseconds). Only a bound: tests never sleep for it, and
   * "nothing was delivered" is always proven by something else that was delivered meanwhile.
   */
  readonly patienceMs: number;
  /**
   * Whether the consumer holds its rejoin until the promise onRevoking returned settles (the commits the
   * runtime started there). Default true; false names a client gap, and the test of it is skipped.
   */
  readonly holdsRejoinForRevokingCommits?: boolean;
  /**
   * Deletes a partition's records below `offset` (Kafka's DeleteRecords: its earliest offset becomes `offset`),
   * as retention would. Absent where the transport has no such thing (memory): the tests that need it skip.
   */
  deleteRecordsBefore?(topic: string, partition: number, offset: number): Promise<void>;
  /**
   * Whether a rebalance revokes only the partitions that move (KIP-848 consumer groups): a member that only
   * gains partitions hears onAssignment without onRevoking before it. Default false (eager: every new
   * generation starts with onRevoking).
   */
  readonly incrementalRebalance?: boolean;
  /**
   * Whether members publish their memberInfo to the group (DescribeGroups). Default true; a KIP-848 group
   * has no field for it, and the test of it is skipped.
   */
  readonly publishesMemberInfo?: boolean;
  /** Removes what the test left on the broker (its topics). Runs after the suite stopped every client it made. */
  cleanup(): Promise<void>;
}

/** Builds a fresh {@link TransportUnderTest} for one test. */
export type TransportFactory = () => TransportUnderTest;

/**
 * {@link TransportUnderTest.createTopic} for a Kafka transport: through the transport's own admin, which waits
 * until every partition has an acting leader; each name is pushed to `created` for the cleanup.
 */
export function createTopicByAdmin(transport: Transport, uniqueName: (prefix: string) => string, created: string[]): TransportUnderTest['createTopic'] {
  return async (prefix, partitions) => {
    const name = uniqueName(prefix);
    created.push(name);
    const admin = transport.admin();
    await admin.connect();
    try {
      await admin.createTopics([{ name, partitions }]);
    } finally {
      await admin.disconnect();
    }
    return name;
  };
}
