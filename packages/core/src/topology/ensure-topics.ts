import { StreamError } from '../errors.js';
import type { TopologyPlan } from '../topology.js';
import type { TransportAdmin } from '../transport/transport.js';

/** How {@link ensureTopics} treats a missing declared topic. */
export interface EnsureTopicsOptions {
  /** The app's id, for the error naming the missing topics. */
  readonly appId: string;
  /** Create missing declared topics from their definitions instead of failing. */
  readonly createTopics?: boolean | undefined;
}

/**
 * Makes the broker match the plan before the app consumes: a missing agent or output topic fails the start
 * with `TOPIC_MISSING` (a typo fails fast) unless `createTopics` is set; missing dead-letter and retry
 * topics are always created, with the partition count of their source.
 */
export async function ensureTopics(admin: TransportAdmin, plan: TopologyPlan, options: EnsureTopicsOptions): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = plan.declaredTopics.filter((t) => !existing.has(t.name));
  if (missing.length > 0) {
    if (!options.createTopics) {
      throw new StreamError(
        'TOPIC_MISSING',
        `app ${options.appId}: topic(s) ${missing.map((t) => t.name).join(', ')} do not exist: create them (\`stream topics create\`) or set createTopics: true`,
      );
    }
    await admin.createTopics(
      missing.map((t) => ({
        name: t.name,
        partitions: t.partitions ?? 1,
        config: { ...t.config, ...(t.retentionMs === undefined ? {} : { 'retention.ms': String(t.retentionMs) }) },
      })),
    );
  }
  const toCreate = [...plan.derivedTopics].filter(([derived]) => !existing.has(derived));
  if (toCreate.length > 0) {
    const specs = await Promise.all(
      toCreate.map(async ([derived, source]) => ({ name: derived, partitions: Math.max(1, (await admin.endOffsets(source)).length) })),
    );
    await admin.createTopics(specs);
  }
}
