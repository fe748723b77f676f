/**
 * The @platformatic/kafka transport as the contract suite sees it, on the local broker (`pnpm stack up`,
 * KAFKA_BROKERS), with either consumer group protocol. Every test creates its own topics, groups and
 * transactional ids; topics are deleted afterwards.
 */
import { deleteRecordsBefore, deleteTopics, localServers, uniqueName } from '@stream/local-stack';
import { PlatformaticTransport, type GroupProtocol } from '../platformatic/index.js';
import type { TransportUnderTest } from './suite.js';
import { createTopicByAdmin } from './transport-under-test.js';

export function platformaticUnderTest(groupProtocol: GroupProtocol): TransportUnderTest {
  const kip848 = groupProtocol === 'consumer';
  const transport = new PlatformaticTransport({
    brokers: [...localServers().kafkaBrokers],
    clientId: kip848 ? 'transport-contract-platformatic-kip848' : 'transport-contract-platformatic',
    groupProtocol,
  });
  const topics: string[] = [];
  return {
    transport,
    uniqueName,
    createTopic: createTopicByAdmin(transport, uniqueName, topics),
    // KIP-848 rebalances are paced by the broker's heartbeat interval (group.consumer.heartbeat.interval.ms, 5 s).
    patienceMs: kip848 ? 45_000 : 30_000,
    // Classic: the client rejoins by itself on a heartbeat answered REBALANCE_IN_PROGRESS, with no hook to hold
    // it, so the runtime's revoking commit must go out synchronously in onRevoking (see PlatformaticConsumer).
    // KIP-848: the revocation's acknowledgement waits for the commits onRevoking returned (ConsumerGroupMembership).
    holdsRejoinForRevokingCommits: kip848,
    ...(kip848
      ? {
          incrementalRebalance: true,
          // ConsumerGroupHeartbeat has no user data: memberInfo is not published (describeGroup lists the members without it).
          publishesMemberInfo: false,
        }
      : {}),
    deleteRecordsBefore,
    cleanup: () => deleteTopics(topics),
  };
}
