import { StreamError } from '../errors.js';
import { changelogTopicName, type AnyTable, type PartitionStore } from '../table.js';
import type { Transport, TransportAdmin } from '../transport/transport.js';
import type { Instrumentation } from './instrumentation.js';
import { readRange } from './read-range.js';

/** A table as one consumed topic uses it. */
export interface TopicTable {
  readonly table: AnyTable;
  readonly changelog: string;
  /** Partitions of the source topic, and so of the changelog. */
  readonly partitions: number;
}

/** The tables of each consumed topic. */
export type TablesByTopic = ReadonlyMap<string, readonly TopicTable[]>;

/**
 * Checks the tables' topics and creates their changelogs: every topic using one table must have the same
 * partition count (co-partitioned), and an existing changelog must have that count too (compacted,
 * `cleanup.policy=compact`, when created here). Fails the start with `CONFIG_INVALID` otherwise.
 */
export async function ensureChangelogs(
  admin: TransportAdmin,
  groupId: string,
  usages: readonly { readonly table: AnyTable; readonly topic: string }[],
): Promise<TablesByTopic> {
  const partitionsOf = new Map<string, number>();
  const count = async (topic: string): Promise<number> => {
    let n = partitionsOf.get(topic);
    if (n === undefined) partitionsOf.set(topic, (n = (await admin.endOffsets(topic)).length));
    return n;
  };
  const byTable = new Map<AnyTable, Set<string>>();
  for (const { table, topic } of usages) {
    const names = [...byTable.keys()].filter((t) => t !== table && t.name === table.name);
    if (names.length > 0) throw new StreamError('CONFIG_INVALID', `group ${groupId}: two tables are named ${table.name}`);
    let topics = byTable.get(table);
    if (!topics) byTable.set(table, (topics = new Set()));
    topics.add(topic);
  }
  const existing = new Set(await admin.listTopics());
  const result = new Map<string, TopicTable[]>();
  for (const [table, topics] of byTable) {
    const counts = await Promise.all([...topics].map(async (t) => [t, await count(t)] as const));
    const partitions = counts[0]![1];
    if (counts.some(([, n]) => n !== partitions)) {
      throw new StreamError(
        'CONFIG_INVALID',
        `table ${table.name} is used by agents over topics that are not co-partitioned (${counts.map(([t, n]) => `${t}: ${n} partitions`).join(', ')}): a table is partitioned like its topics, so they need the same partition count and keys`,
        { context: { table: table.name } },
      );
    }
    const changelog = changelogTopicName(groupId, table.name);
    if (existing.has(changelog)) {
      const actual = await count(changelog);
      if (actual !== partitions) {
        throw new StreamError(
          'CONFIG_INVALID',
          `table ${table.name}: its changelog ${changelog} has ${actual} partitions but its source topic ${counts[0]![0]} has ${partitions}: state cannot be matched to partitions (delete the changelog or repartition)`,
          { context: { table: table.name, changelog, changelogPartitions: actual, sourcePartitions: partitions } },
        );
      }
    } else {
      await admin.createTopics([{ name: changelog, partitions, config: { 'cleanup.policy': 'compact' } }]);
    }
    for (const topic of topics) {
      const list = result.get(topic) ?? [];
      list.push({ table, changelog, partitions });
      result.set(topic, list);
    }
  }
  return result;
}

/**
 * Restores one partition of a table from its changelog partition: reads it from the earliest offset,
 * committed records only, until the read position reaches the end offset read at the start (compaction
 * and transaction markers leave gaps: the last record need not sit at end - 1). Waits first for this
 * instance's own changelog writes of the partition still in flight (a previous assignment's). Rejects with
 * `signal`'s reason when it is aborted (the partition was revoked).
 *
 * With a local store (`AppOptions.stateDir`) whose checkpoint C can be trusted (see table-store.ts), its
 * entries are loaded first and only the changelog from C is read; what is read goes to the local store too,
 * and the end read is checkpointed. A store that cannot be trusted is emptied and the partition read in full.
 */
export async function restorePartition(
  transport: Transport,
  admin: TransportAdmin,
  usage: TopicTable,
  partition: number,
  signal: AbortSignal,
  instrumentation: Instrumentation,
): Promise<PartitionStore<unknown, unknown>> {
  const { table, changelog, partitions } = usage;
  if (!transport.readPartition) {
    throw new StreamError('CONFIG_INVALID', `the ${transport.name} transport cannot read a partition: table ${table.name} cannot be restored`);
  }
  await table.writesSettled(partition);
  signal.throwIfAborted();
  table.restoring(partition);
  const end = Number((await admin.endOffsets(changelog)).find((o) => o.partition === partition)?.offset ?? '0');
  const local = table.localPartition(changelog, partition, partitions);
  let store: PartitionStore<unknown, unknown> = table.createStore(changelog, partition, partitions);
  let start = 0;
  if (local) {
    // Acknowledged writes of a previous assignment queued to LMDB are committed before it is read.
    await local.settled();
    const checkpoint = local.trusted(end, undefined, table.localStore!.maxCheckpointAgeMs);
    if (checkpoint) {
      for (const message of local.messages(checkpoint)) table.applyEntry(store, message);
      store.loaded = store.restored - 1; // the last message only carries the checkpoint's headers
      store.restored = 0;
      start = checkpoint.offset;
    }
  }
  const read = async (): Promise<void> => {
    instrumentation.restoring?.(table.name, partition, end - start, 0);
    await readRange(transport, `table ${table.name}`, {
      topic: changelog,
      partition,
      ...(start > 0 ? { start } : {}),
      end,
      signal,
      apply: (message) => table.applyEntry(store, message),
      applied: (messages) => local?.apply(messages),
      progress: (last) => instrumentation.restoring?.(table.name, partition, Math.max(0, end - Math.max(last, start - 1) - 1), store.restored),
    });
  };
  try {
    await read();
  } catch (error) {
    if (!(local && error instanceof StreamError && error.context.outOfRange === true)) throw error;
    // Retention deleted changelog entries below the checkpoint: the local store cannot be proven to hold them.
    await local.settled();
    local.discard();
    store = table.createStore(changelog, partition, partitions);
    start = 0;
    await read();
  }
  if (local) {
    // Nothing was written meanwhile (the partition is paused and earlier writes settled): the end is exact,
    // unless LMDB refused one of the entries read (then the restore fails and is retried).
    await local.settled();
    if (!local.checkpointable) {
      throw new StreamError('STATE_INVALID', `table ${table.name}: the local store refused a write of partition ${partition}`, {
        context: { table: table.name, partition, changelog },
      });
    }
    await local.checkpoint(end);
    instrumentation.checkpointed?.(table.name, partition, end);
  }
  instrumentation.restoring?.(table.name, partition, 0, store.restored);
  return store;
}
