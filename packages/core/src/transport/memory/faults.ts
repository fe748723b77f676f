/** Fault injection: hooks that run before a broker operation and fail it by throwing. */
import type { OutgoingMessage, PartitionOffset } from '../transport.js';
import type { GroupOffsets } from './transactions.js';

/**
 * What the broker is about to do when a fault hook runs; a hook that throws makes the operation fail
 * with that error before anything changed. Messages are shown with the partition they were routed to.
 */
export type FaultEvent =
  | { readonly point: 'send'; readonly messages: readonly OutgoingMessage[] }
  | { readonly point: 'commit'; readonly groupId: string; readonly memberId: string; readonly offsets: readonly PartitionOffset[] }
  | {
      readonly point: 'transaction';
      readonly transactionalId: string;
      readonly messages: readonly OutgoingMessage[];
      readonly offsets: readonly GroupOffsets[];
    }
  | { readonly point: 'fetch'; readonly groupId: string; readonly memberId: string; readonly topic: string; readonly partition: number };

/** Where a fault can be injected: a plain send, a consumer commit, a transaction commit, or a fetch (which crashes the consumer). */
export type FaultPoint = FaultEvent['point'];

/** A fault hook for one point; throw to fail the operation. */
export type FaultHook<P extends FaultPoint> = (event: Extract<FaultEvent, { readonly point: P }>) => void;

/** The hooks injected into one broker, by point. */
export class FaultHooks {
  readonly #hooks = new Map<FaultPoint, Set<(event: FaultEvent) => void>>();

  /** Adds a hook for `point`; returns a function that removes it. */
  inject<P extends FaultPoint>(point: P, hook: FaultHook<P>): () => void {
    const hooks = this.#hooks.get(point) ?? new Set();
    this.#hooks.set(point, hooks);
    // The map is keyed by point, so a hook only ever sees events of its own point.
    const stored = hook as (event: FaultEvent) => void;
    hooks.add(stored);
    return () => hooks.delete(stored);
  }

  /** Runs the hooks of the event's point; the first that throws fails the operation. */
  run(event: FaultEvent): void {
    for (const hook of [...(this.#hooks.get(event.point) ?? [])]) hook(event);
  }
}
