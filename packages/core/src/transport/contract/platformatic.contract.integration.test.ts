/**
 * The transport contract against the @platformatic/kafka transport on the local broker (`pnpm stack up`,
 * KAFKA_BROKERS). Every test creates its own topics, groups and transactional ids; topics are deleted afterwards.
 */
import { deleteRecordsBefore, deleteTopics, localServers, requireServers, uniqueName } from '@stream/local-stack';
import { beforeAll } from 'vitest';
import { PlatformaticTransport } from '../platformatic/index.js';
import { describeTransportContract, type TransportUnderTest } from './suite.js';

function platformaticUnderTest(): TransportUnderTest {
  const transport = new PlatformaticTransport({ brokers: [...localServers().kafkaBrokers], clientId: 'transport-contract-platformatic' });
  const topics: string[] = [];
  return {
    transport,
    uniqueName,
    async createTopic(prefix, partitions) {
      const name = uniqueName(prefix);
      topics.push(name);
      // The transport's own admin waits until every partition has an acting leader (see PlatformaticAdmin).
      const admin = transport.admin();
      await admin.connect();
      try {
        await admin.createTopics([{ name, partitions }]);
      } finally {
        await admin.disconnect();
      }
      return name;
    },
    patienceMs: 30_000,
    // The client rejoins by itself on a heartbeat answered REBALANCE_IN_PROGRESS, with no hook to hold it:
    // the runtime's revoking commit must go out synchronously in onRevoking there (see PlatformaticConsumer).
    holdsRejoinForRevokingCommits: false,
    deleteRecordsBefore,
    cleanup: () => deleteTopics(topics),
  };
}

beforeAll(() => requireServers('kafka'));

describeTransportContract('platformatic', platformaticUnderTest);
