import { toError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { OutgoingMessage } from '../transport/transport.js';
import { backoffDelay, sleep, type ResolvedRetry } from './backoff.js';
import { classifyFailure, type FailureClass } from './classify.js';
import { deadLetterMessage } from './dead-letter.js';
import type { AgentLabels, Instrumentation } from './instrumentation.js';
import type { Delivery } from './partition.js';
import { retryMessage, withoutRetryHeaders, type RetryOrigin, type RetryStage } from './retry-topics.js';

/** What a failure policy needs from its app. */
export interface FailureHost {
  readonly appId: string;
  readonly instrumentation: Instrumentation;
  /** Sends right away (at-least-once path). */
  produce(messages: readonly OutgoingMessage[]): Promise<void>;
  /** A delivery is finished for this agent; `outputs` are committed with it under exactly-once. */
  finished(delivery: Delivery, outputs: readonly OutgoingMessage[]): void;
}

/** How one agent on one of its topics treats failed attempts. */
export interface FailurePolicyOptions {
  /** The topic the runner consumes: the source named when a record has no retry origin. */
  readonly source: string;
  readonly labels: AgentLabels;
  readonly retry: ResolvedRetry;
  /** Dead-letter topic name, or null when dead letters are off. */
  readonly deadLetterTopic: string | null;
  readonly exactlyOnce: boolean;
  /** The agent's delayed-retry stages, in order (empty: none). */
  readonly retryStages: readonly RetryStage[];
  /** 0 on the agent's own topic, n on `retryStages[n - 1]`. */
  readonly stage: number;
}

/** What to do with a record whose attempt failed. */
export type FailureVerdict =
  /** Attempt it again here after `delayMs`. */
  | { readonly kind: 'retry-in-place'; readonly delayMs: number }
  /** Forward it to the next delayed-retry stage: attempts here are exhausted. */
  | { readonly kind: 'retry-stage'; readonly stage: RetryStage }
  /** Write it to dead-letter `topic`: `permanent` when retrying cannot fix it, else attempts ran out. */
  | { readonly kind: 'dead-letter'; readonly topic: string; readonly permanent: boolean };

/** One failed attempt of a record, with what the record went through before. */
export interface AttemptFailure {
  readonly delivery: Delivery;
  readonly error: Error;
  /** Whose fault it was; {@link classifyFailure} of `error` when left out. */
  readonly failureClass?: FailureClass;
  /** This runner's attempt number, 1-based: the attempts that count against `retry.attempts`. */
  readonly attempt: number;
  /** Attempts on earlier stages (0 on the agent's own topic). */
  readonly priorAttempts: number;
  /** Where a record on a retry stage first came from (undefined on the agent's own topic). */
  readonly origin: RetryOrigin | undefined;
  readonly firstFailureAt: Date;
  /** Fires when the partition is revoked, the deadline passes or shutdown starts: waits stop. */
  readonly waitSignal: AbortSignal;
  /** The record's child logger, built on first use. */
  readonly log: () => Logger;
}

/**
 * After a failure: `again` when the record should be attempted once more, `done` when it was forwarded,
 * dead-lettered, or given up on (aborted while waiting: it stays uncommitted and is consumed again).
 */
export type FailureOutcome = 'again' | 'done';

/**
 * Decides what a failed attempt leads to, and carries it out: retry in place with backoff, forward to the
 * agent's next delayed-retry stage, dead-letter, or retry in place for ever when there are neither.
 */
export class FailurePolicy {
  readonly #options: FailurePolicyOptions;
  readonly #host: FailureHost;

  constructor(options: FailurePolicyOptions, host: FailureHost) {
    this.#options = options;
    this.#host = host;
  }

  /**
   * The verdict for failed attempt number `attempt` (1-based, this runner's). A permanent failure
   * (NonRetryableError, schema or decode errors) skips retries; so does it skip the retry stages.
   */
  decide(error: Error, attempt: number, failureClass: FailureClass = classifyFailure(error)): FailureVerdict {
    const permanent = failureClass.kind === 'permanent';
    const exhausted = attempt >= this.#options.retry.attempts;
    const next = this.#options.retryStages[this.#options.stage];
    if (exhausted && !permanent && next) return { kind: 'retry-stage', stage: next };
    const deadLetterTopic = this.#options.deadLetterTopic;
    if (deadLetterTopic !== null && (permanent || exhausted)) return { kind: 'dead-letter', topic: deadLetterTopic, permanent };
    return { kind: 'retry-in-place', delayMs: backoffDelay(this.#options.retry, attempt) };
  }

  /** Counts the failure, decides, and carries out the verdict. Never rejects. */
  async handle(failure: AttemptFailure): Promise<FailureOutcome> {
    this.#host.instrumentation.failed(this.#options.labels, failure.error);
    const verdict = this.decide(failure.error, failure.attempt, failure.failureClass);
    switch (verdict.kind) {
      case 'retry-stage':
        return this.#forward(failure, verdict.stage);
      case 'dead-letter':
        return this.#deadLetter(failure, verdict);
      case 'retry-in-place':
        return this.#retryInPlace(failure, verdict.delayMs);
    }
  }

  /** Where the record was first consumed: a retry stage names its origin, not itself. */
  #source(failure: AttemptFailure): { topic: string; partition: number; offset: string; firstFailureAt: Date } {
    const { origin, delivery } = failure;
    return {
      topic: origin?.topic ?? this.#options.source,
      partition: origin?.partition ?? delivery.partition.partition,
      offset: origin?.offset ?? delivery.message.offset,
      firstFailureAt: failure.firstFailureAt,
    };
  }

  async #forward(failure: AttemptFailure, next: RetryStage): Promise<FailureOutcome> {
    const { error, delivery } = failure;
    const attempts = failure.priorAttempts + failure.attempt;
    const log = failure.log();
    log.warn({ err: error, attempt: attempts, retryTopic: next.topic, retryInMs: next.delayMs }, 'retries exhausted: scheduling a delayed retry');
    const later = retryMessage({ stage: next, message: delivery.message, origin: this.#source(failure), attempts, error, now: Date.now() });
    if (!(await this.sendAside(later, failure.waitSignal, log))) return 'done';
    this.#host.instrumentation.retried(this.#options.labels);
    this.#host.finished(delivery, this.#options.exactlyOnce ? [later] : []);
    return 'done';
  }

  async #deadLetter(failure: AttemptFailure, { topic, permanent }: { topic: string; permanent: boolean }): Promise<FailureOutcome> {
    const { error, delivery, origin } = failure;
    const { message } = delivery;
    const attempts = failure.priorAttempts + failure.attempt;
    const log = failure.log();
    log.error({ err: error, attempt: attempts }, permanent ? 'record cannot be processed: dead-lettering' : 'retries exhausted: dead-lettering');
    const source = this.#source(failure);
    const dead = deadLetterMessage({
      appId: this.#host.appId,
      deadLetterTopic: topic,
      sourceTopic: source.topic,
      partition: source.partition,
      // The record as it was on its source: its own headers and offset, not those of a retry stage.
      message: origin ? { ...message, offset: source.offset, headers: withoutRetryHeaders(message.headers) } : message,
      error,
      attempts,
      firstFailureAt: failure.firstFailureAt,
    });
    if (!(await this.sendAside(dead, failure.waitSignal, log))) return 'done';
    this.#host.instrumentation.deadLettered(this.#options.labels);
    this.#host.finished(delivery, this.#options.exactlyOnce ? [dead] : []);
    return 'done';
  }

  async #retryInPlace(failure: AttemptFailure, delayMs: number): Promise<FailureOutcome> {
    failure.log().warn({ err: failure.error, attempt: failure.priorAttempts + failure.attempt, retryInMs: delayMs }, 'handler failed: retrying');
    this.#host.instrumentation.retried(this.#options.labels);
    try {
      await sleep(delayMs, failure.waitSignal);
    } catch {
      return 'done';
    }
    return 'again';
  }

  /**
   * A dead letter or a delayed retry: under exactly-once it joins the partition's transaction; otherwise
   * it is sent now, retried until it is written, since committing past a record whose copy was lost would lose it.
   * Resolves false when `signal` fired first (the record stays uncommitted).
   */
  async sendAside(copy: OutgoingMessage, signal: AbortSignal, log: Logger): Promise<boolean> {
    if (this.#options.exactlyOnce) return true;
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.#host.produce([copy]);
        return true;
      } catch (error) {
        const delay = backoffDelay(this.#options.retry, attempt);
        log.error({ err: toError(error), attempt, retryInMs: delay }, `cannot write to ${copy.topic}: retrying`);
        try {
          await sleep(delay, signal);
        } catch {
          return false;
        }
      }
    }
  }
}
