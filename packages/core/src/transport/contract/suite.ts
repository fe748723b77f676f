/**
 * One behavioural contract for every {@link Transport}: the runtime is the same code on the in-memory
 * transport (unit tests) and on kafkajs (production), so the claim that they behave alike is tested
 * here, against both. Adding a transport is one more `describeTransportContract('x', factory)` call.
 */
import { describe } from 'vitest';
import type { Transport } from '../transport.js';
import { describeFlowControl } from './flow-control.js';
import { describeMissingTopics } from './missing-topics.js';
import { describeOffsets } from './offsets.js';
import { describeRebalances } from './rebalance.js';
import { describeRecords } from './records.js';
import { describeTransactions } from './transactions.js';
import type { TransportFactory } from './transport-under-test.js';

export type { TransportFactory, TransportUnderTest } from './transport-under-test.js';

/** Options of {@link describeTransportContract}. */
export interface ContractOptions {
  /** Run the tests of each section concurrently (every test has its own topics and groups). */
  readonly concurrent?: boolean;
}

/**
 * Declares the transport contract suite for one implementation.
 *
 * @example
 * describeTransportContract('memory', () => memoryUnderTest());
 */
export function describeTransportContract(name: string, factory: TransportFactory, options: ContractOptions = {}): void {
  const section = options.concurrent === true ? describe.concurrent : describe;
  section(`transport contract: ${name}`, () => {
    describeOffsets(factory);
    describeFlowControl(factory);
    describeRebalances(factory);
    describeTransactions(factory);
    describeRecords(factory);
    describeMissingTopics(factory);
  });
}

/** Kept so that the type of a transport under test is reachable from the suite's one import. */
export type { Transport };
