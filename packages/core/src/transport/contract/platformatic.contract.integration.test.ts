/**
 * The transport contract against the @platformatic/kafka transport with the classic consumer group protocol
 * on the local broker (`pnpm stack up`, KAFKA_BROKERS).
 */
import { requireServers } from '@stream/local-stack';
import { beforeAll } from 'vitest';
import { platformaticUnderTest } from './platformatic-under-test.js';
import { describeTransportContract } from './suite.js';

beforeAll(() => requireServers('kafka'));

describeTransportContract('platformatic', () => platformaticUnderTest('classic'));
