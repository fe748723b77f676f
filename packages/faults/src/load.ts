import { feedActivities, orders, searchQueries } from '@stream/contracts';
import type { AnyTopic } from '@stream/core';
import type { Message, Producer } from 'kafkajs';
import { HUGE_BYTES, mutate, sampleMutations, type BaseRecord, type InputTopic, type Mutation, type WireRecord } from './fuzz.js';
import { headersWithinLimits, kcatCanCarry, type HostileEntry, type KcatProducer, type WireHeader } from './hostile.js';

/** Header naming each produced record, carried into dead letters: how the checker follows a record. */
export const RECORD_HEADER = 'faults.id';

/** One record the load produced, as the checker expects to see its effects. */
export interface ProducedRecord {
  readonly fid: string;
  readonly topic: InputTopic;
  /** Valid per the topic's contract: must be processed; otherwise it must be dead-lettered. */
  readonly good: boolean;
  /** The business id (activity, order or query id) of a good record. */
  readonly id: string | null;
  /** The feed user of a good activity. */
  readonly user: string | null;
  /** The fuzzer's mutation, the hostile corpus entry's name, or `plain`. */
  readonly kind: string;
  /** The client that produced it. */
  readonly via: 'kafkajs' | 'kcat';
}

export interface LoadOptions {
  /** Prefix of every id and user: records of one fault never mix with another's. */
  readonly slug: string;
  readonly total: number;
  /** Records per second. */
  readonly rate: number;
  /** Every `fuzzEvery`-th record is a fuzzed one (0: none). */
  readonly fuzzEvery: number;
  readonly seed: number;
  readonly symbols: readonly string[];
  /** Orders are executed within this window (the seeded market data). */
  readonly market: { readonly start: Date; readonly end: Date };
  /** Every `every`-th record (from record `every` on) is the next entry of the hostile corpus, while it lasts. */
  readonly hostile?: { readonly every: number; readonly entries: readonly HostileEntry[]; readonly kcat: KcatProducer };
}

const TOPICS: Readonly<Record<InputTopic, AnyTopic>> = { feed_activities: feedActivities, orders, search_queries: searchQueries };
const WORDS = ['wireless headphones', 'red leather wallet', 'waterproof tent', 'quiet blender', 'oak desk', 'garden hose', 'running shoes', 'desk lamp'];
const USERS = 100;

/**
 * feed-cache's own rule on top of the contract (its `feedProblem`, with the fleet's defaults): the key is the
 * activity's user, and its time at most FEED_MAX_FUTURE_SECONDS (300 s) ahead of now. Others are dead-lettered.
 */
const FEED_MAX_FUTURE_MS = 300_000;
function feedCacheTakes(key: unknown, value: { user?: string; timestamp?: Date }): boolean {
  return key === value.user && value.timestamp instanceof Date && value.timestamp.getTime() <= Date.now() + FEED_MAX_FUTURE_MS;
}

/** Whether the topic's contract (and, for activities, feed-cache's rule) accepts the record, and if so its id and user. */
async function classify(topic: InputTopic, wire: WireRecord): Promise<{ id: string; user: string | null } | null> {
  try {
    const decoded = await TOPICS[topic].decode({ key: wire.key, value: wire.value, headers: {}, offset: '0', timestamp: '0' }, { partition: 0 });
    const value = decoded.value as { id: string; user?: string; timestamp?: Date };
    if (topic === 'feed_activities' && !feedCacheTakes(decoded.key, value)) return null;
    return { id: value.id, user: topic === 'feed_activities' ? (value.user ?? null) : null };
  } catch {
    return null;
  }
}

/**
 * Produces `total` records at `rate` per second over the three input topics (half activities, a quarter each
 * orders and queries), every `fuzzEvery`-th one fuzzed, and remembers each. A send the broker refuses (it is
 * down) is retried until it is acknowledged: the load pauses rather than drops anything.
 */
export class Load {
  readonly records = new Map<string, ProducedRecord>();
  /** Feed users this load wrote to, hostile ones included. */
  readonly users = new Set<string>();
  /** Ids of the good orders produced so far (their emails are counted from outside). */
  readonly goodOrders: string[] = [];
  /** Good records produced so far, per topic: the effects each service owes. */
  readonly good: Record<InputTopic, number> = { feed_activities: 0, orders: 0, search_queries: 0 };
  readonly #producer: Producer;
  readonly #options: LoadOptions;
  readonly #mutations: Mutation[];
  #sent = 0;
  #waiters: { n: number; resolve: () => void }[] = [];
  #retries = 0;

  constructor(producer: Producer, options: LoadOptions) {
    this.#producer = producer;
    this.#options = options;
    this.#mutations = options.fuzzEvery > 0 ? sampleMutations(options.seed, Math.ceil(options.total / options.fuzzEvery) + 1) : [];
  }

  /** Records acknowledged by the broker so far. */
  get sent(): number {
    return this.#sent;
  }

  /** Sends refused and retried (broker outages). */
  get retries(): number {
    return this.#retries;
  }

  /** Resolves once `n` records (at most the total) were acknowledged. */
  whenSent(n: number): Promise<void> {
    const target = Math.min(n, this.#options.total);
    if (this.#sent >= target) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ n: target, resolve }));
  }

  #base(topic: InputTopic, n: number): BaseRecord {
    const { slug, symbols, market } = this.#options;
    const user = `${slug}-u${n % USERS}`;
    const at = (fraction: number) => new Date(market.start.getTime() + 60_000 + fraction * (market.end.getTime() - market.start.getTime() - 60_000));
    switch (topic) {
      case 'feed_activities':
        return {
          key: user,
          value: { id: `${slug}-a${n}`, user, message: `${user} liked item ${n}`, timestamp: new Date(Date.now() - (n % 1000)).toISOString() },
          textFields: ['message', 'user'],
        };
      case 'orders': {
        const id = `${slug}-o${n}`;
        const value = {
          id,
          userId: user,
          symbol: symbols[n % symbols.length]!,
          side: n % 3 === 0 ? 'sell' : 'buy',
          quantity: 1 + (n % 100),
          price: 100 + (n % 50) / 10,
          executedAt: at(((n * 7919) % 1000) / 1000).toISOString(),
        };
        return { key: id, value, textFields: ['symbol', 'userId'] };
      }
      case 'search_queries': {
        const id = `${slug}-q${n}`;
        return {
          key: id,
          value: { id, userId: user, queryString: WORDS[n % WORDS.length]!, timestamp: new Date().toISOString() },
          textFields: ['queryString', 'userId'],
        };
      }
    }
  }

  /** The hostile corpus entry of record `n`, if it is one. */
  #hostileEntry(n: number): HostileEntry | undefined {
    const hostile = this.#options.hostile;
    if (!hostile || n === 0 || n % hostile.every !== 0) return undefined;
    return hostile.entries[n / hostile.every - 1];
  }

  /** A record of the hostile corpus: good if its headers are within the runtime's limits and the contract accepts it. */
  async #hostileRecord(n: number, entry: HostileEntry): Promise<{ topic: InputTopic; message: Message; huge: boolean; kcat: boolean }> {
    const topic = entry.topic;
    const fid = `${this.#options.slug}-r${n}`;
    const record = entry.build(this.#base(topic, n));
    const headers: WireHeader[] = [[RECORD_HEADER, Buffer.from(fid)], ...record.headers];
    const known = headersWithinLimits(headers) ? await classify(topic, record) : null;
    const kcat = entry.via === 'kcat' && kcatCanCarry(record, fid);
    this.records.set(fid, {
      fid,
      topic,
      good: known !== null,
      id: known?.id ?? null,
      user: known?.user ?? null,
      kind: entry.name,
      via: kcat ? 'kcat' : 'kafkajs',
    });
    if (known?.user != null) this.users.add(known.user);
    if (known) {
      this.good[topic] += 1;
      if (topic === 'orders') this.goodOrders.push(known.id);
    }
    // A prototype-free object: a header may be named __proto__. A null value is written as such (core's kafkajs patch).
    const wire = Object.create(null) as Record<string, Buffer | null>;
    for (const [name, value] of headers) wire[name] = value;
    const message: Message = { key: record.key, value: record.value, headers: wire as NonNullable<Message['headers']> };
    return { topic, message, huge: (record.value?.length ?? 0) >= HUGE_BYTES, kcat };
  }

  async #record(n: number): Promise<{ topic: InputTopic; message: Message; huge: boolean; kcat?: boolean }> {
    const entry = this.#hostileEntry(n);
    if (entry) return this.#hostileRecord(n, entry);
    const topic: InputTopic = n % 4 < 2 ? 'feed_activities' : n % 4 === 2 ? 'orders' : 'search_queries';
    const fid = `${this.#options.slug}-r${n}`;
    const base = this.#base(topic, n);
    const fuzz = this.#options.fuzzEvery > 0 && n % this.#options.fuzzEvery === 0 ? this.#mutations[n / this.#options.fuzzEvery] : undefined;
    let wire: WireRecord;
    let known: { id: string; user: string | null } | null;
    if (fuzz) {
      wire = mutate(base, fuzz);
      known = await classify(topic, wire);
    } else {
      wire = { key: Buffer.from(base.key), value: Buffer.from(JSON.stringify(base.value)) };
      known = { id: String(base.value.id), user: topic === 'feed_activities' ? String(base.value.user) : null };
    }
    this.records.set(fid, { fid, topic, good: known !== null, id: known?.id ?? null, user: known?.user ?? null, kind: fuzz?.kind ?? 'plain', via: 'kafkajs' });
    if (known?.user != null) this.users.add(known.user);
    if (known) {
      this.good[topic] += 1;
      if (topic === 'orders') this.goodOrders.push(known.id);
    }
    const huge = (wire.value?.length ?? 0) >= HUGE_BYTES;
    return { topic, huge, message: { key: wire.key, value: wire.value, headers: { [RECORD_HEADER]: fid } } };
  }

  async #send(batch: { topic: string; messages: Message[] }[], signal: AbortSignal): Promise<void> {
    for (;;) {
      try {
        await this.#producer.sendBatch({ topicMessages: batch, acks: -1 });
        return;
      } catch (error) {
        if (signal.aborted) throw error;
        this.#retries += 1;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** One record through kcat, retried like a kafkajs send until the broker acknowledges it. */
  async #sendKcat(topic: string, message: Message, signal: AbortSignal): Promise<void> {
    const kcat = this.#options.hostile!.kcat;
    const raw = (message.headers ?? {}) as Record<string, Buffer | null>;
    const headers: WireHeader[] = Object.keys(raw).map((name) => [name, raw[name] ?? null]);
    const record = { key: (message.key as Buffer | null) ?? null, value: (message.value as Buffer | null) ?? null, headers };
    for (;;) {
      try {
        await kcat.send(topic, record);
        return;
      } catch (error) {
        if (signal.aborted) throw error;
        this.#retries += 1;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** Produces everything, paced; resolves when the last record was acknowledged. */
  async run(signal: AbortSignal): Promise<void> {
    const { total, rate } = this.#options;
    const tickMs = 100;
    const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
    for (let n = 0; n < total && !signal.aborted;) {
      const tickStart = Date.now();
      const byTopic = new Map<string, Message[]>();
      const huge: { topic: string; messages: Message[] }[] = [];
      const viaKcat: { topic: string; message: Message }[] = [];
      const end = Math.min(total, n + perTick);
      for (; n < end; n += 1) {
        const record = await this.#record(n);
        if (record.kcat) viaKcat.push(record);
        // A record of about 1 MB goes alone: two in one record batch would pass the broker's limit.
        else if (record.huge) huge.push({ topic: record.topic, messages: [record.message] });
        else (byTopic.get(record.topic) ?? byTopic.set(record.topic, []).get(record.topic)!).push(record.message);
      }
      const count = [...byTopic.values()].reduce((s, m) => s + m.length, 0) + huge.length + viaKcat.length;
      await this.#send(
        [...byTopic].map(([topic, messages]) => ({ topic, messages })),
        signal,
      );
      for (const one of huge) await this.#send([one], signal);
      for (const one of viaKcat) await this.#sendKcat(one.topic, one.message, signal);
      this.#sent += count;
      this.#waiters = this.#waiters.filter((w) => (this.#sent >= w.n ? (w.resolve(), false) : true));
      await new Promise((r) => setTimeout(r, Math.max(0, tickMs - (Date.now() - tickStart))));
    }
  }
}
