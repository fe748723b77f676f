/**
 * The transport contract against the kafkajs transport on the local broker (`pnpm stack up`,
 * KAFKA_BROKERS). Every test creates its own topics, groups and transactional ids; topics are deleted
 * afterwards. kafkajs log lines are kept and printed only for a failing test.
 */
import { deleteRecordsBefore, deleteTopics, localServers, requireServers, uniqueName } from '@stream/local-stack';
import { afterEach, beforeAll } from 'vitest';
import { KafkaTransport, type KafkaLogEntry } from '../kafka/index.js';
import { describeTransportContract, type TransportUnderTest } from './suite.js';
import { createTopicByAdmin } from './transport-under-test.js';

let logs: KafkaLogEntry[] = [];

function kafkaUnderTest(): TransportUnderTest {
  const transport = new KafkaTransport({
    brokers: [...localServers().kafkaBrokers],
    clientId: 'transport-contract',
    logger: (entry) => logs.push(entry),
    logLevel: 'warn',
  });
  const topics: string[] = [];
  return {
    transport,
    uniqueName,
    createTopic: createTopicByAdmin(transport, uniqueName, topics),
    // Group joins and rebalances take seconds on a real broker.
    patienceMs: 30_000,
    deleteRecordsBefore,
    cleanup: () => deleteTopics(topics),
  };
}

beforeAll(() => requireServers('kafka'));

afterEach((context) => {
  if (context.task.result?.state === 'fail') {
    for (const entry of logs) console.error(`[kafkajs ${entry.level}] ${entry.namespace}: ${entry.message}`, entry.fields);
  }
  logs = [];
});

describeTransportContract('kafka', kafkaUnderTest);
