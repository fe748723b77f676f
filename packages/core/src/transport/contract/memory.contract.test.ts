/** The transport contract against the in-memory transport: a fresh broker per test, no servers. */
import { MemoryBroker, MemoryTransport } from '../memory/index.js';
import { describeTransportContract, type TransportUnderTest } from './suite.js';

function memoryUnderTest(): TransportUnderTest {
  const broker = new MemoryBroker();
  let next = 0;
  return {
    transport: new MemoryTransport(broker),
    uniqueName: (prefix) => `${prefix}-${(next += 1)}`,
    async createTopic(prefix, partitions) {
      const name = `${prefix}-${(next += 1)}`;
      broker.createTopic(name, partitions);
      return name;
    },
    patienceMs: 2_000,
    cleanup: async () => undefined,
  };
}

describeTransportContract('memory', memoryUnderTest);
