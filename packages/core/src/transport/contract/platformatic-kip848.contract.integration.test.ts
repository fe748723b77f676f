/**
 * The transport contract against the @platformatic/kafka transport with the KIP-848 consumer group protocol
 * (`groupProtocol: 'consumer'`) on the local broker (Kafka 4.x: `pnpm stack up`, KAFKA_BROKERS). Rebalances
 * are incremental and paced by the broker's heartbeat interval (group.consumer.heartbeat.interval.ms, 5 s
 * by default), so a rebalance takes a few seconds here.
 */
import { requireServers } from '@stream/local-stack';
import { beforeAll } from 'vitest';
import { platformaticUnderTest } from './platformatic-under-test.js';
import { describeTransportContract } from './suite.js';

beforeAll(() => requireServers('kafka'));

describeTransportContract('platformatic (KIP-848 consumer protocol)', () => platformaticUnderTest('consumer'));
