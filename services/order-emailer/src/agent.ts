import type { Order, orders } from '@stream/contracts';
import { toError, type App, type Classifier, type Logger, type RetryOptions } from '@stream/core';
import { setTimeout as delay } from 'node:timers/promises';
import type { DedupeStore } from './dedupe.js';
import { EmailApiUnavailableError, idempotencyKeyOf, type EmailClient } from './emailer.js';

/**
 * Another worker holds the order's claim: it is sending the email right now. Retryable: the record waits
 * (agent backoff) and looks again; it then finds `sent`, or the claim released or expired and takes it.
 */
export class ConfirmationInProgressError extends Error {
  constructor(orderId: string) {
    super(`order ${orderId}: another worker is sending its confirmation right now; waiting for it`);
    this.name = 'ConfirmationInProgressError';
  }
}

/** What {@link OrderConfirmer.confirm} did. */
export type ConfirmOutcome = 'sent' | 'already-sent' | 'recorded';

/** Orders whose email went out but whose `sent` record failed to be written, remembered at most this many. */
const MAX_UNRECORDED = 10_000;

/**
 * Sends each order's confirmation once, whatever the redeliveries: claim in Redis, POST, record `sent`.
 *
 * 1. `claim`: `sent` → done, nothing is POSTed; another worker's live claim → {@link ConfirmationInProgressError}
 *    (retryable); free → this worker holds it for the lease.
 * 2. POST with `Idempotency-Key: idempotencyKeyOf(<order id>)` (the id percent-encoded: header-safe). On failure the claim is released (only if still ours) so the
 *    retry can take it at once, and the error goes to the agent's retry policy.
 * 3. `SET … sent EX ttl`.
 *
 * The one window Redis cannot close: a worker that dies (or loses its lease) after the API accepted the
 * POST and before step 3. The next worker then POSTs again, with the same Idempotency-Key, which the API
 * uses to send nothing twice. A POST aborted by a revoke or shutdown is the same case.
 */
export class OrderConfirmer {
  readonly #emailer: Pick<EmailClient, 'sendConfirmation'>;
  readonly #dedupe: DedupeStore;
  /**
   * Orders this process sent but could not mark `sent` (Redis failed right after the POST). Their retry only
   * writes the record, without a second POST. Lost on restart, where the lease and the Idempotency-Key take over.
   */
  readonly #unrecorded = new Set<string>();

  constructor(emailer: Pick<EmailClient, 'sendConfirmation'>, dedupe: DedupeStore) {
    this.#emailer = emailer;
    this.#dedupe = dedupe;
  }

  async confirm(order: Order, ctx: { readonly signal: AbortSignal; readonly log?: Logger }): Promise<ConfirmOutcome> {
    const id = order.id;
    if (this.#unrecorded.has(id)) {
      await this.#dedupe.markSent(id);
      this.#unrecorded.delete(id);
      ctx.log?.info({ orderId: id }, 'confirmation recorded as sent');
      return 'recorded';
    }
    const result = await this.#dedupe.claim(id);
    if (result.state === 'sent') {
      ctx.log?.debug({ orderId: id }, 'confirmation already sent: skipping');
      return 'already-sent';
    }
    if (result.state === 'busy') throw new ConfirmationInProgressError(id);

    try {
      await this.#emailer.sendConfirmation(order, { signal: ctx.signal, idempotencyKey: idempotencyKeyOf(id) });
    } catch (error) {
      // A claim that cannot be released (Redis down) simply runs out at the end of its lease.
      await this.#dedupe
        .release(result.claim)
        .catch((e: unknown) => ctx.log?.warn({ err: toError(e), orderId: id }, 'cannot release the claim: it will expire'));
      // Retries live in the agent's policy (one place that counts, logs, backs off and dead-letters). The only
      // thing it cannot do is wait as long as the API asked: so the Retry-After wait happens here, after the
      // claim was released (the lease only covers a request), bounded by EMAILER_MAX_RETRY_AFTER_SECONDS and
      // cut short by ctx.signal (revoke, shutdown deadline); the agent's backoff then comes on top of it.
      if (error instanceof EmailApiUnavailableError && error.retryAfterMs !== undefined && error.retryAfterMs > 0 && !ctx.signal.aborted) {
        ctx.log?.warn({ orderId: id, status: error.status, retryAfterMs: error.retryAfterMs }, 'email API asked to retry later: waiting');
        await delay(error.retryAfterMs, undefined, { signal: ctx.signal }).catch(() => undefined);
      }
      throw error;
    }

    this.#remember(id);
    await this.#dedupe.markSent(id);
    this.#unrecorded.delete(id);
    ctx.log?.info({ orderId: id }, 'confirmation sent');
    return 'sent';
  }

  #remember(id: string): void {
    if (this.#unrecorded.size >= MAX_UNRECORDED) {
      const oldest = this.#unrecorded.values().next();
      if (!oldest.done) this.#unrecorded.delete(oldest.value);
    }
    this.#unrecorded.add(id);
  }
}

/**
 * Retries: an outage of the email API (network errors, timeouts, 408/429/5xx) or of Redis is waited out
 * without limit and dead-letters nothing: the agent starts no new orders until the dependency answers, and
 * the records hold their partitions. An order that keeps failing while they answer (other orders are
 * emailed, Redis' ping passes) goes to `orders.dlq` after 5 attempts; a {@link NonRetryableError} (a 4xx) at once.
 */
export const DEFAULT_RETRY: RetryOptions = { attempts: 5, backoff: { initialMs: 250, maxMs: 30_000, multiplier: 2, jitter: 0.2 } };

/** The email API's unavailability is a dependency's fault; Redis' errors the default classification knows. */
export const classifyEmailer: Classifier = (error) => (error instanceof EmailApiUnavailableError ? { kind: 'dependency', dependency: 'email-api' } : undefined);

export interface EmailerAgentOptions {
  /** Orders in flight at once; orders with the same key (order id) run one at a time. */
  readonly concurrency: number;
  readonly retry?: RetryOptions;
}

/** The order-emailer agent on `topic` (the `orders` topic in production, a unique one in tests). */
export function emailerAgent(app: App, topic: typeof orders, confirmer: OrderConfirmer, options: EmailerAgentOptions): void {
  const agentOptions = { name: 'order-emailer', concurrency: options.concurrency, retry: options.retry ?? DEFAULT_RETRY, classify: classifyEmailer };
  app.agent(topic, agentOptions, async (order, ctx) => {
    await confirmer.confirm(order, { signal: ctx.signal, log: ctx.log });
  });
}
