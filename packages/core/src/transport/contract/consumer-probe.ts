import type { Assignment, ConsumerListener, FetchedBatch, RawMessage, TopicPartition } from '../transport.js';

/** One thing a consumer told its listener, in the order it happened. */
export type ProbeEvent =
  | { readonly kind: 'assignment'; readonly assignment: Assignment }
  | { readonly kind: 'revoking' }
  | { readonly kind: 'batch'; readonly batch: FetchedBatch; readonly accepted: number };

/** A record the probe accepted, with the partition it came from. */
export interface AcceptedRecord extends RawMessage, TopicPartition {}

/**
 * A {@link ConsumerListener} that records everything it hears. `accept` decides how much of a batch it
 * takes (default: all) and may pause from inside onBatch, as the runtime does; `revoking` runs inside
 * onRevoking, where the runtime makes its last commits of a generation.
 */
export class ConsumerProbe implements ConsumerListener {
  readonly events: ProbeEvent[] = [];
  readonly accepted: AcceptedRecord[] = [];
  readonly crashes: Error[] = [];
  accept: (batch: FetchedBatch) => number = (batch) => batch.messages.length;
  revoking: () => void | Promise<void> = () => undefined;

  onAssignment(assignment: Assignment): void {
    this.events.push({ kind: 'assignment', assignment });
  }

  onBatch(batch: FetchedBatch): number {
    const accepted = this.accept(batch);
    this.events.push({ kind: 'batch', batch, accepted });
    for (const m of batch.messages.slice(0, accepted)) this.accepted.push({ ...m, topic: batch.topic, partition: batch.partition });
    return accepted;
  }

  onRevoking(): void | Promise<void> {
    this.events.push({ kind: 'revoking' });
    return this.revoking();
  }

  onCrash(error: Error): void {
    this.crashes.push(error);
  }

  get assignments(): Assignment[] {
    return this.events.flatMap((e) => (e.kind === 'assignment' ? [e.assignment] : []));
  }

  /** The latest assignment, or an empty one of generation 0 before the first. */
  get assignment(): Assignment {
    return this.assignments.at(-1) ?? { generation: 0, partitions: [] };
  }

  /** Batches delivered, optionally only those of one partition and only from event index `since` on. */
  batches(partition?: TopicPartition, since = 0): FetchedBatch[] {
    return this.events
      .slice(since)
      .flatMap((e) => (e.kind === 'batch' ? [e.batch] : []))
      .filter((b) => partition === undefined || (b.topic === partition.topic && b.partition === partition.partition));
  }

  /** Accepted records of one partition, in the order accepted. */
  of(partition: TopicPartition): AcceptedRecord[] {
    return this.accepted.filter((m) => m.topic === partition.topic && m.partition === partition.partition);
  }

  /** Offsets accepted from one partition, as numbers, in the order accepted. */
  offsets(partition: TopicPartition): number[] {
    return this.of(partition).map((m) => Number(m.offset));
  }

  /** Values accepted (all partitions), as UTF-8 text, in the order accepted. */
  values(partition?: TopicPartition): (string | null)[] {
    return (partition === undefined ? this.accepted : this.of(partition)).map((m) => m.value?.toString() ?? null);
  }
}
