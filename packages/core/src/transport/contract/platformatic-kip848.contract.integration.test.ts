/**
 * The transport contract against the @platformatic/kafka transport with the KIP-848 consumer group protocol
 * (`groupProtocol: 'consumer'`) on the local broker (Kafka 4.x: `pnpm stack up`, KAFKA_BROKERS). Rebalances
 * are incremental and paced by the broker's heartbeat interval (group.consumer.heartbeat.interval.ms, 5 s
 * by default), so a rebalance takes a few seconds here.
 */
import { deleteTopics, localServers, requireServers, uniqueName } from '@stream/local-stack';
import { beforeAll } from 'vitest';
import { PlatformaticTransport } from '../platformatic/index.js';
import { describeTransportContract, type TransportUnderTest } from './suite.js';

function platformaticConsumerProtocolUnderTest(): TransportUnderTest {
  const transport = new PlatformaticTransport({
    brokers: [...localServers().kafkaBrokers],
    clientId: 'transport-contract-platformatic-kip848',
    groupProtocol: 'consumer',
  });
  const topics: string[] = [];
  return {
    transport,
    uniqueName,
    async createTopic(prefix, partitions) {
      const name = uniqueName(prefix);
      topics.push(name);
      const admin = transport.admin();
      await admin.connect();
      try {
        await admin.createTopics([{ name, partitions }]);
      } finally {
        await admin.disconnect();
      }
      return name;
    },
    patienceMs: 45_000,
    // The revocation's acknowledgement waits for the commits onRevoking returned (see ConsumerGroupMembership).
    holdsRejoinForRevokingCommits: true,
    incrementalRebalance: true,
    // ConsumerGroupHeartbeat has no user data: memberInfo is not published (describeGroup lists the members without it).
    publishesMemberInfo: false,
    cleanup: () => deleteTopics(topics),
  };
}

beforeAll(() => requireServers('kafka'));

describeTransportContract('platformatic (KIP-848 consumer protocol)', platformaticConsumerProtocolUnderTest);
