import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';

/** The value of a key once the order's email went out. */
export const SENT = 'sent';
const PENDING = 'pending:';

/**
 * Takes the claim when the key is free (`SET key pending:<token> NX PX lease`), else returns what holds it.
 * One script, so the answer is consistent: no gap in which a claim released between a SET NX and a GET
 * reads as "free" without being taken.
 */
const CLAIM = `
local current = redis.call('GET', KEYS[1])
if current then return current end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
`;

/** Deletes the key only while it still holds this worker's claim (a compare-and-delete). */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

interface DedupeScripts {
  emailerClaim(key: string, value: string, leaseMs: number): Promise<string | null>;
  emailerRelease(key: string, value: string): Promise<number>;
}

/** This worker's right to send one order's email, until `release`, `markSent` or the lease's end. */
export interface Claim {
  readonly orderId: string;
  readonly key: string;
  /** `pending:<uuid>`: tells this claim from any other worker's. */
  readonly value: string;
}

/** What {@link DedupeStore.claim} found. */
export type ClaimResult =
  | { readonly state: 'claimed'; readonly claim: Claim }
  /** The email went out already: send nothing. */
  | { readonly state: 'sent' }
  /** Another worker holds a live claim: it is sending right now (or crashed, and the lease has yet to run out). */
  | { readonly state: 'busy' };

export interface DedupeOptions {
  /** Life of a claim in ms: longer than one request, so a live sender never loses it, short enough that a crashed one's order is not held up for long. */
  readonly leaseMs: number;
  /** Life of a "sent" record in seconds: how long redeliveries and replays are recognised. */
  readonly ttlSeconds: number;
  /** Default `emailer:order:`. */
  readonly keyPrefix?: string;
}

/**
 * Which orders' emails went out, in Redis, one key per order id (`emailer:order:<id>`):
 * - absent: nobody sent it (or the record expired after `ttlSeconds`);
 * - `pending:<uuid>` with a lease (PX): one worker is sending it now;
 * - `sent` with a TTL (EX): done.
 * It survives restarts and is shared by every instance of the service.
 */
export class DedupeStore {
  readonly #redis: Redis & DedupeScripts;
  readonly #options: Required<DedupeOptions>;

  constructor(redis: Redis, options: DedupeOptions) {
    if (!Number.isInteger(options.leaseMs) || options.leaseMs < 1) throw new Error(`DedupeStore: leaseMs must be a positive integer, got ${options.leaseMs}`);
    if (!Number.isInteger(options.ttlSeconds) || options.ttlSeconds < 1)
      throw new Error(`DedupeStore: ttlSeconds must be a positive integer, got ${options.ttlSeconds}`);
    // defineCommand runs the scripts by EVALSHA, loading them on NOSCRIPT; defining twice is harmless.
    redis.defineCommand('emailerClaim', { numberOfKeys: 1, lua: CLAIM });
    redis.defineCommand('emailerRelease', { numberOfKeys: 1, lua: RELEASE });
    this.#redis = redis as Redis & DedupeScripts;
    this.#options = { keyPrefix: 'emailer:order:', ...options };
  }

  keyOf(orderId: string): string {
    return `${this.#options.keyPrefix}${orderId}`;
  }

  /** Claims the order for this worker, unless its email was sent or another worker holds it. */
  async claim(orderId: string): Promise<ClaimResult> {
    const key = this.keyOf(orderId);
    const value = `${PENDING}${randomUUID()}`;
    const current = await this.#redis.emailerClaim(key, value, this.#options.leaseMs);
    if (current === null) return { state: 'claimed', claim: { orderId, key, value } };
    // Anything but `sent` is treated as a claim: an unknown value must never suppress an email.
    return current === SENT ? { state: 'sent' } : { state: 'busy' };
  }

  /**
   * Records that the email went out. Unconditional: even if this worker's lease ran out and another worker
   * took over, the email was sent (that worker's POST carries the same Idempotency-Key).
   */
  async markSent(orderId: string): Promise<void> {
    await this.#redis.set(this.keyOf(orderId), SENT, 'EX', this.#options.ttlSeconds);
  }

  /** Gives a claim back after a failed send so a retry (here or elsewhere) can take it at once. False if it was no longer ours. */
  async release(claim: Claim): Promise<boolean> {
    return (await this.#redis.emailerRelease(claim.key, claim.value)) === 1;
  }

  /** What the store holds for an order: for tests and operators. */
  async state(orderId: string): Promise<'sent' | 'pending' | null> {
    const value = await this.#redis.get(this.keyOf(orderId));
    return value === null ? null : value === SENT ? 'sent' : 'pending';
  }
}
