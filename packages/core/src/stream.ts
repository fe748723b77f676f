import { offAbort, onAbort } from './abort.js';
import type { AgentContext, AgentHandler } from './agent.js';
import { StreamError, toError } from './errors.js';
import type { Logger } from './logger.js';
import { heldResult, holdRecord, type Held } from './runtime/handler-context.js';
import type { OutgoingRecord, StreamRecord } from './record.js';
import type { Topic } from './topic.js';

/** The function of a stream agent: iterates its stream until the app stops. */
export type StreamAgentFunction<K, V> = (stream: AgentStream<K, V>) => Promise<void>;

/**
 * A record handed to the stream loop. Its outcome goes to its hold (see `holdRecord`) once: done
 * when the loop moves on, failed with the loop's error, or aborted when its signal fires meanwhile (revoke,
 * shutdown deadline), whatever the loop does with it later.
 */
class Item {
  readonly record: StreamRecord<unknown, unknown>;
  readonly ctx: AgentContext<unknown>;
  readonly #held: Held;
  #settled = false;
  readonly #aborted = (reason: Error): void => this.settle(reason);

  constructor(record: StreamRecord<unknown, unknown>, ctx: AgentContext<unknown>, held: Held) {
    this.record = record;
    this.ctx = ctx;
    this.#held = held;
    // One event listener per partition signal for all its records waiting in the loop (see onAbort).
    onAbort(ctx.signal, this.#aborted);
  }

  /** Done (no error) or failed; only the first call counts. */
  settle(error?: Error): void {
    if (this.#settled) return;
    this.#settled = true;
    offAbort(this.ctx.signal, this.#aborted);
    this.#held.release(error);
  }
}

const SKIP = Symbol('skip');
type Stage = (value: unknown, item: Item) => unknown;

/**
 * Hands records from the agent runner to one sequential loop. A record is done when the loop asks for
 * the next value (or, with `take`, the next batch): that is when its handler promise resolves and its
 * offset may be committed. Everything handed out and not yet done fails with the loop's error if it throws.
 */
class Channel {
  readonly #queue: Item[] = [];
  #delivered: Item[] = [];
  #waiter: (() => void) | undefined;
  #ended = false;

  push(item: Item): void {
    this.#queue.push(item);
    this.#wake();
  }

  end(): void {
    this.#ended = true;
    this.#wake();
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }

  /** Marks every value handed out so far as done. */
  ackDelivered(): void {
    const done = this.#delivered;
    this.#delivered = [];
    for (const item of done) item.settle();
  }

  /** Fails one value handed out, on its own: it is no longer the loop's (see {@link AgentStream.reject}). */
  failOne(item: Item, error: Error): void {
    const at = this.#delivered.indexOf(item);
    if (at !== -1) this.#delivered.splice(at, 1);
    item.settle(error);
  }

  /** Fails every value handed out and not done (the loop threw or returned). */
  failDelivered(error: Error): void {
    const failed = this.#delivered;
    this.#delivered = [];
    for (const item of failed) item.settle(error);
  }

  /** Fails everything not done, handed out or still queued: the loop will not run again (stopping). */
  failAll(error: Error): void {
    this.failDelivered(error);
    for (const item of this.#queue.splice(0)) item.settle(error);
  }

  /** The next item, or null when the stream ended, or (with `withinMs`) when none came in time. */
  async pull(withinMs?: number): Promise<Item | null> {
    const deadline = withinMs === undefined ? undefined : Date.now() + withinMs;
    for (;;) {
      const item = this.#queue.shift();
      if (item) {
        this.#delivered.push(item);
        return item;
      }
      if (this.#ended) return null;
      const left = deadline === undefined ? undefined : deadline - Date.now();
      if (left !== undefined && left <= 0) return null;
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
        if (left !== undefined) setTimeout(() => this.#wake(), left);
      });
    }
  }
}

/**
 * A stream of a topic's values for sequential (Faust-style) processing.
 *
 * @example
 * for await (const order of stream.filter((o) => o.quantity > 100)) await flagLargeOrder(order);
 */
export class AgentStream<K, V> implements AsyncIterable<V> {
  readonly #channel: Channel;
  readonly #stages: readonly Stage[];

  /** @internal */
  constructor(channel: Channel, stages: readonly Stage[] = []) {
    this.#channel = channel;
    this.#stages = stages;
  }

  async #nextValue(withinMs?: number): Promise<{ value: V; item: Item } | null | 'timeout'> {
    const deadline = withinMs === undefined ? undefined : Date.now() + withinMs;
    for (;;) {
      const left = deadline === undefined ? undefined : Math.max(0, deadline - Date.now());
      const item = await this.#channel.pull(left);
      if (!item) return deadline !== undefined && Date.now() >= deadline ? 'timeout' : null;
      let value: unknown = item.record.value;
      for (const stage of this.#stages) {
        value = await stage(value, item);
        if (value === SKIP) break;
      }
      if (value !== SKIP) return { value: value as V, item };
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<V> {
    for (;;) {
      this.#channel.ackDelivered();
      const next = await this.#nextValue();
      if (next === null || next === 'timeout') return;
      yield next.value;
    }
  }

  /** Iterates whole records (key, headers, partition, offset) instead of values. */
  async *records(): AsyncIterable<StreamRecord<K, V>> {
    for (;;) {
      this.#channel.ackDelivered();
      const next = await this.#nextValue();
      if (next === null || next === 'timeout') return;
      yield { ...(next.item.record as StreamRecord<K, unknown>), value: next.value };
    }
  }

  /**
   * Batches of up to `size` values, yielded when full or `within` ms after the batch's first value.
   * A batch is done when the loop asks for the next one.
   */
  async *take(size: number, options: { within: number }): AsyncIterable<V[]> {
    if (size < 1) throw new StreamError('CONFIG_INVALID', 'take(size): size must be at least 1');
    for (;;) {
      this.#channel.ackDelivered();
      const first = await this.#nextValue();
      if (first === null || first === 'timeout') return;
      const batch = [first.value];
      const deadline = Date.now() + options.within;
      while (batch.length < size) {
        const next = await this.#nextValue(Math.max(0, deadline - Date.now()));
        if (next === null || next === 'timeout') break;
        batch.push(next.value);
      }
      yield batch;
    }
  }

  /** Only values for which `predicate` holds (the others are done at once). */
  filter(predicate: (value: V) => boolean | Promise<boolean>): AgentStream<K, V> {
    return new AgentStream(this.#channel, [...this.#stages, async (v) => ((await predicate(v as V)) ? v : SKIP)]);
  }

  /**
   * Fails, each on its own, the records for which `problem` returns an error, and passes the others on: the
   * loop never sees a failed one. The error goes to the agent's retry policy like a handler's, so a
   * `NonRetryableError` sends the record to the dead-letter topic at once, with the error's message as the
   * reason, while the records around it (the rest of a batch of `take`) go on.
   *
   * @example
   * const valid = stream.reject((a, r) => (r.key === a.user ? undefined : new NonRetryableError(`key ${r.key} is not the user ${a.user}`)));
   */
  reject(problem: (value: V, record: StreamRecord<K, V>) => Error | undefined): AgentStream<K, V> {
    return new AgentStream(this.#channel, [
      ...this.#stages,
      (v, item) => {
        const record = item.record as StreamRecord<K, unknown>;
        // The record as it is when no stage before changed its value (the common case: no copy per record).
        const error = problem(v as V, (record.value === v ? record : { ...record, value: v }) as StreamRecord<K, V>);
        if (error === undefined) return v;
        this.#channel.failOne(item, error);
        return SKIP;
      },
    ]);
  }

  /** Values transformed by `fn`. */
  map<U>(fn: (value: V) => U | Promise<U>): AgentStream<K, U> {
    return new AgentStream(this.#channel, [...this.#stages, (v) => fn(v as V)]);
  }

  /**
   * Sends each value to `topic` (inside the record's transaction under exactly-once) and passes it on.
   * By default the record keeps its key.
   */
  through<KIn, KOut, VOut>(
    topic: Topic<KIn, KOut, V, VOut>,
    toRecord: (value: V, record: StreamRecord<K, unknown>) => OutgoingRecord<KIn, V> = (value, record) => ({ key: record.key as unknown as KIn, value }),
  ): AgentStream<K, V> {
    return new AgentStream(this.#channel, [
      ...this.#stages,
      async (v, item) => {
        await item.ctx.send(topic, toRecord(v as V, item.record as StreamRecord<K, unknown>));
        return v;
      },
    ]);
  }
}

/**
 * Bridges an agent runner to a stream function: the runner's handler pushes each record into the channel
 * and waits until the loop is done with it. The loop restarts after it throws or returns early.
 */
export function createStreamAgent(fn: StreamAgentFunction<unknown, unknown>, stopping: AbortSignal, log: Logger): AgentHandler<unknown, unknown> {
  const channel = new Channel();
  stopping.addEventListener('abort', () => channel.end(), { once: true });

  const loop = async () => {
    for (;;) {
      const current = channel;
      let failure: Error;
      try {
        await fn(new AgentStream(current));
        if (stopping.aborted) {
          // Nothing is left after a drained end; if the loop returned early, what is left is not done.
          current.failAll(new StreamError('ABORTED', 'stream agent ended while stopping'));
          return;
        }
        failure = new StreamError('STATE_INVALID', 'stream agent function returned while the app runs');
      } catch (error) {
        failure = toError(error);
      }
      if (stopping.aborted) {
        // No restart while stopping: every record not done fails now (and stays uncommitted), so the
        // runner goes idle at once instead of holding the stop until its deadline.
        log.error({ err: failure }, 'stream agent failed while stopping: its unfinished records stay uncommitted');
        current.failAll(failure);
        return;
      }
      log.error({ err: failure }, 'stream agent failed: its unfinished records will be retried; restarting it');
      current.failDelivered(failure);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  };
  void loop();

  return (value, ctx) => {
    // Revoked, or the shutdown deadline passed: not handed to the loop (and not reported done, so it is
    // consumed again).
    const signal = ctx.signal;
    if (signal.aborted) return Promise.reject(toError(signal.reason));
    const record: StreamRecord<unknown, unknown> = {
      topic: ctx.topic,
      partition: ctx.partition,
      offset: ctx.offset,
      key: ctx.key,
      value,
      headers: ctx.headers,
      timestamp: ctx.timestamp,
    };
    // The runtime's record waits held open, with no promise or async frame of its own (see holdRecord); any
    // other context (a test's) waits on a promise.
    const held = holdRecord(ctx);
    channel.push(new Item(record, ctx, held));
    return heldResult(held);
  };
}
