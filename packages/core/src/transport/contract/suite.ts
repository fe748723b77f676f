/**
 * One behavioural contract for every transport: the runtime is the same code on the in-memory
 * transport (unit tests) and on kafkajs (production), so the claim that they behave alike is tested
 * here, against both. Adding a transport is one more `describeTransportContract('x', factory)` call.
 *
 * The suite depends on the seam (`../transport.js`) only; implementations are imported by the small
 * test files that call it.
 */
import { describe } from 'vitest';
import { describeFlowControl } from './flow-control.js';
import { describeGroupMembers } from './group-members.js';
import { describeLifecycle } from './lifecycle.js';
import { describeMissingTopics } from './missing-topics.js';
import { describeOffsets } from './offsets.js';
import { describeRebalances } from './rebalance.js';
import { describeRecords } from './records.js';
import { describeTransactions } from './transactions.js';
import type { TransportFactory } from './transport-under-test.js';

export type { TransportFactory, TransportUnderTest } from './transport-under-test.js';

/**
 * Declares the transport contract suite for one implementation. Tests run one after another: each gets
 * a fresh transport under test from `factory`, with its own topics, groups and transactional ids.
 *
 * @example
 * describeTransportContract('memory', () => memoryUnderTest());
 */
export function describeTransportContract(name: string, factory: TransportFactory): void {
  describe(`transport contract: ${name}`, () => {
    describeOffsets(factory);
    describeFlowControl(factory);
    describeRebalances(factory);
    describeTransactions(factory);
    describeRecords(factory);
    describeMissingTopics(factory);
    describeGroupMembers(factory);
    describeLifecycle(factory);
  });
}
