import type { GroupDescription, PartitionOffset, TopicSpec, TransportAdmin } from '../transport.js';
import type { BrokerCore } from './broker.js';

/** Topics and offsets of the memory broker; connecting is a no-op. */
export class MemoryAdmin implements TransportAdmin {
  readonly #core: BrokerCore;

  constructor(core: BrokerCore) {
    this.#core = core;
  }

  async connect(): Promise<void> {}

  async createTopics(topics: readonly TopicSpec[]): Promise<string[]> {
    const created: string[] = [];
    for (const spec of topics) if (this.#core.logs.createTopic(spec.name, spec.partitions)) created.push(spec.name);
    return created;
  }

  async listTopics(): Promise<string[]> {
    return this.#core.logs.topicNames();
  }

  async endOffsets(topic: string): Promise<PartitionOffset[]> {
    return this.#core.logs.endOffsets(topic);
  }

  async committedOffsets(groupId: string, topic: string): Promise<PartitionOffset[]> {
    this.#core.logs.topic(topic);
    return this.#core.groups.committed(groupId).filter((o) => o.topic === topic);
  }

  async describeGroup(groupId: string): Promise<GroupDescription> {
    return this.#core.groups.describe(groupId);
  }

  async disconnect(): Promise<void> {}
}
