import { feedActivities, orders, searchQueries, type Order } from '@stream/contracts';
import type { App } from '@stream/core';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

export const SYMBOLS = ['ACME', 'GLOBEX', 'INITECH', 'UMBRELLA', 'HOOLI'] as const;
/** Market ms per real ms when the demo replays execution times over a run of known length. */
export const REPLAY_SPEED = 20;
const VERBS = ['liked', 'shared', 'commented on', 'bookmarked', 'followed'];
const THINGS = ['a chart of ACME', 'an article on index funds', 'a post about dividends', 'a watchlist', 'an earnings call'];

/** A deterministic random source in [0, 1) (xoroshiro128+), so two demo runs tell the same story. */
export function random(seed: number): () => number {
  const rng = xoroshiro128plus(seed | 0);
  return () => uniformFloat64(rng);
}

export interface ProducerCounts {
  activities: number;
  orders: number;
  duplicateOrders: number;
  queries: number;
  malformedOrders: number;
  malformedActivities: number;
}

/**
 * Streams activities, orders and search queries through the contracts (so every record is valid), plus a
 * few deliberate redeliveries of orders and a few malformed records, to show deduplication and dead letters.
 */
export class DemoProducer {
  readonly counts: ProducerCounts = { activities: 0, orders: 0, duplicateOrders: 0, queries: 0, malformedOrders: 0, malformedActivities: 0 };
  readonly #app: App;
  readonly #rand: () => number;
  readonly #marketStart: number;
  readonly #marketEnd: number;
  readonly #queries: readonly string[];
  readonly #recent: Order[] = [];
  /** Ids of the valid orders and queries this run produced: the summary checks those, whatever else is in the topics. */
  readonly orderIds = new Set<string>();
  readonly queryIds = new Set<string>();
  #sequence = 0;

  readonly #priceAt: (symbol: string, at: Date) => number;
  /** When the run began, where its execution times start, and how many ms of market time pass per ms of it. */
  readonly #began = Date.now();
  readonly #sweepStart: number;
  readonly #speed: number;

  constructor(
    app: App,
    options: {
      seed: number;
      marketStart: Date;
      marketEnd: Date;
      /**
       * How long the demo produces: its execution times replay the market data 20 times faster than real time,
       * ending near the data's end. Default: in real time from the data's start, for a producer that runs until stopped.
       */
      durationMs?: number;
      queries: readonly string[];
      priceAt: (symbol: string, at: Date) => number;
    },
  ) {
    this.#priceAt = options.priceAt;
    this.#app = app;
    this.#rand = random(options.seed);
    this.#marketStart = options.marketStart.getTime();
    this.#marketEnd = options.marketEnd.getTime();
    this.#queries = options.queries;
    this.#speed = options.durationMs === undefined ? 1 : REPLAY_SPEED;
    const earliest = this.#marketStart + 60_000;
    this.#sweepStart = options.durationMs === undefined ? earliest : Math.max(earliest, this.#marketEnd - options.durationMs * REPLAY_SPEED);
  }

  /**
   * An execution time that moves through the market data as the run goes, give or take 5 s, as a broker's
   * fills arrive: mostly in order, so execution-quality's per-minute summary windows close during the run.
   */
  #executionTime(): Date {
    const base = this.#sweepStart + (Date.now() - this.#began) * this.#speed;
    const jittered = base + (this.#rand() - 0.5) * 10_000;
    return new Date(Math.min(this.#marketEnd, Math.max(this.#marketStart + 60_000, jittered)));
  }

  #pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.#rand() * list.length)]!;
  }

  /** One tick's worth of records. */
  async tick(perTick: number, sendRaw: (topic: string, key: string, value: string) => Promise<void>): Promise<void> {
    const sends: Promise<void>[] = [];
    for (let i = 0; i < perTick; i += 1) {
      const n = (this.#sequence += 1);
      const user = `user-${1 + Math.floor(this.#rand() * 50)}`;
      sends.push(
        this.#app.send(feedActivities, {
          key: user,
          value: { id: `act-${Date.now()}-${n}`, user, message: `${user} ${this.#pick(VERBS)} ${this.#pick(THINGS)}`, timestamp: new Date() },
        }),
      );
      if (n % 2 === 0) {
        const symbol = this.#pick(SYMBOLS);
        const executedAt = this.#executionTime();
        // Fills within ±30 bps of the market, a little worse than it on average, as a real broker's might be.
        const side = this.#rand() < 0.5 ? 'buy' : 'sell';
        const drift = (this.#rand() * 60 - 25) / 10_000;
        const market = this.#priceAt(symbol, executedAt);
        const order: Order = {
          id: `ord-${Date.now().toString(36)}-${n}`,
          userId: user,
          symbol,
          side,
          quantity: 1 + Math.floor(this.#rand() * 100),
          price: Math.max(0.0001, Math.round(market * (side === 'buy' ? 1 + drift : 1 - drift) * 10_000) / 10_000),
          executedAt,
        };
        sends.push(this.#app.send(orders, { key: order.id, value: order }));
        this.#recent.push(order);
        this.orderIds.add(order.id);
        if (this.#recent.length > 100) this.#recent.shift();
        this.counts.orders += 1;
        // A redelivered order (as after a producer retry): the emailer must not send a second email.
        if (n % 20 === 0 && this.#recent.length > 1) {
          const again = this.#pick(this.#recent);
          sends.push(this.#app.send(orders, { key: again.id, value: again }));
          this.counts.duplicateOrders += 1;
        }
      }
      if (n % 3 === 0) {
        const id = `q-${Date.now().toString(36)}-${n}`;
        this.queryIds.add(id);
        sends.push(this.#app.send(searchQueries, { key: id, value: { id, userId: user, queryString: this.#pick(this.#queries), timestamp: new Date() } }));
        this.counts.queries += 1;
      }
      if (n % 97 === 0) {
        sends.push(sendRaw('orders', `bad-${n}`, `{"id":"bad-${n}","symbol":`));
        sends.push(sendRaw('feed_activities', user, JSON.stringify({ id: `bad-${n}`, user, message: 'no timestamp' })));
        this.counts.malformedOrders += 1;
        this.counts.malformedActivities += 1;
      }
      this.counts.activities += 1;
    }
    await Promise.all(sends);
  }
}
