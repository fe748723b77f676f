import type { EmailSink, SinkStats } from '@stream/local-stack';
import { deadLetterTopicName } from '@stream/core';
import { slippageBySymbol } from '@stream/contracts';
import { Redis } from 'ioredis';
import type { Producer } from 'kafkajs';
import { SERVICES, type Fleet, type ServiceName } from './fleet.js';
import type { InputTopic } from './fuzz.js';
import { startGroupsAtEnd } from './groups.js';
import { ensureKcat, hostileCorpus, KcatProducer } from './hostile.js';
import { withAdmin } from '@stream/local-stack';
import { Load, type LoadOptions } from './load.js';
import { INPUT_TOPICS, TopicObserver } from './observer.js';
import type { FaultStack } from './stack.js';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

/** The apps (service ids) that consume each input topic: each must dead-letter a bad record once. */
const CONSUMERS: Readonly<Record<InputTopic, readonly ServiceName[]>> = {
  feed_activities: ['feed-cache'],
  orders: ['order-emailer', 'execution-quality'],
  search_queries: ['search-enricher'],
};

/** What a fault scenario can do while the load runs. */
export interface FaultContext {
  readonly fleet: Fleet;
  readonly load: Load;
  readonly stack: FaultStack;
  readonly sink: EmailSink;
  /** The suite's producer (kafkajs, idempotent), for a fault that writes records of its own. */
  readonly producer: Producer;
  /** The execution times the seeded market data covers. */
  readonly market: LoadOptions['market'];
  /** Total records of this fault. */
  readonly records: number;
  readonly random: () => number;
  /**
   * `services` were hit at `since` and must recover: once `ready` (a restart) resolved, each must do something
   * new or be caught up. The longest time from `since` is this fault's recovery time.
   */
  expectRecovery(services: readonly ServiceName[], since: number, ready?: Promise<unknown>): void;
  /** A line shown under the fault's result. */
  note(line: string): void;
  /** A guarantee broken in a way the record counts do not show (e.g. an exit code): fails the suite. */
  problem(line: string): void;
}

export interface FaultSpec {
  readonly slug: string;
  readonly title: string;
  readonly records: number;
  readonly rate: number;
  /** Every n-th record fuzzed (0: none). */
  readonly fuzzEvery?: number;
  /** Every n-th record is the next entry of the hostile-input corpus, some produced with kcat (0: none). */
  readonly hostileEvery?: number;
  /**
   * Checks on top of the record counts: no service process exits, every partition's committed offset of every
   * service's group reaches the partition's end offset, and no service's peak RSS passes `maxRssMiB`.
   */
  readonly strict?: { readonly maxRssMiB: number };
  /**
   * What the services' Kafka client must be able to do for this fault to mean anything (`readPartition`:
   * restore a table from its changelog). On a client without it the fault is reported SKIPPED, with why.
   */
  readonly needs?: 'readPartition';
  inject(ctx: FaultContext): Promise<void>;
}

export interface FaultResult {
  readonly title: string;
  readonly recordsIn: number;
  readonly processed: number;
  readonly lost: number;
  readonly duplicates: number;
  readonly deadLettered: number;
  /** Longest time until processing resumed after an injection; null when nothing was injected. */
  readonly recoverMs: number | null;
  readonly durationMs: number;
  readonly problems: readonly string[];
  readonly notes: readonly string[];
  /** Where the fault's time went (see {@link Phases}); empty when it did not run. */
  readonly phases: readonly { readonly name: string; readonly ms: number }[];
  /** Why the fault was not run (a client without a capability it needs, `--skip`); never a pass. */
  readonly skipped?: string;
}

export interface Environment {
  readonly stack: FaultStack;
  readonly sink: EmailSink;
  readonly producer: Producer;
  readonly brokers: readonly string[];
  readonly redisUrl: string;
  readonly makeFleet: (slug: string) => Fleet;
  readonly market: LoadOptions['market'];
  readonly symbols: readonly string[];
  readonly seed: number;
  /** How long the drain may go without any progress before what is missing counts as lost. */
  readonly stallMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Seeded random numbers in [0, 1) (xoroshiro128+): the same moments for the same seed. */
export function random(seed: number): () => number {
  const rng = xoroshiro128plus(seed | 0);
  return () => uniformFloat64(rng);
}

/** What each service has visibly done so far, sampled from outside: feeds in Redis, emails, reports, results. */
class Progress {
  readonly #redis: Redis;
  readonly #load: Load;
  readonly #sink: EmailSink;
  readonly #observer: TopicObserver;
  #feedItems = 0;
  #timer: NodeJS.Timeout | undefined;
  #polling = false;

  constructor(redisUrl: string, load: Load, sink: EmailSink, observer: TopicObserver) {
    this.#redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, connectTimeout: 2000, lazyConnect: false, retryStrategy: () => 500 });
    this.#redis.on('error', () => undefined);
    this.#load = load;
    this.#sink = sink;
    this.#observer = observer;
  }

  start(): void {
    this.#timer = setInterval(() => void this.#poll(), 250);
  }

  async #poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      const pipeline = this.#redis.pipeline();
      for (const user of this.#load.users) pipeline.zcard(`feed:${user}`);
      const results = (await pipeline.exec()) ?? [];
      let total = 0;
      for (const [error, n] of results) if (!error) total += Number(n);
      this.#feedItems = Math.max(this.#feedItems, total);
    } catch {
      // Redis is down (a fault): keep the last count.
    } finally {
      this.#polling = false;
    }
  }

  count(service: ServiceName): number {
    switch (service) {
      case 'feed-cache':
        return this.#feedItems;
      case 'order-emailer': {
        let n = 0;
        for (const id of this.#load.goodOrders) if (this.#sink.emailsFor(id) > 0) n += 1;
        return n;
      }
      case 'execution-quality':
        return this.#observer.reports.size;
      case 'search-enricher':
        return this.#observer.results.size;
    }
  }

  /** What `service` owes for the records produced so far. */
  #owed(service: ServiceName): number {
    const good = this.#load.good;
    return service === 'feed-cache' ? good.feed_activities : service === 'search-enricher' ? good.search_queries : good.orders;
  }

  /**
   * Resolves with the ms from `since` until `service`, once `ready`, did something new or owes nothing
   * (Infinity after `limitMs`).
   */
  async resumed(service: ServiceName, since: number, ready: Promise<unknown>, limitMs = 180_000): Promise<number> {
    const baseline = this.count(service);
    await ready.catch(() => undefined);
    while (Date.now() - since < limitMs) {
      const now = this.count(service);
      if (now > baseline || now >= this.#owed(service)) return Date.now() - since;
      await sleep(100);
    }
    return Infinity;
  }

  /** Reads every feed of the load: activity ids found in Redis. */
  async feedIds(): Promise<Set<string>> {
    const ids = new Set<string>();
    for (const user of this.#load.users) {
      for (const member of await this.#redis.zrange(`feed:${user}`, 0, -1)) {
        try {
          const [id] = JSON.parse(member) as [string, string];
          ids.add(id);
        } catch {
          // not a member feed-cache wrote
        }
      }
    }
    return ids;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#redis.disconnect();
  }
}

interface Tally {
  processed: number;
  lost: number;
  duplicates: number;
  pending: number;
  /** The non-plain records (fuzzed, hostile) neither processed nor dead-lettered as they should be: kind, verdict, client. */
  unfinished: string[];
  notes: string[];
  problems: string[];
}

/** Compares what was produced with what is visible outside: feeds, emails, outputs, dead letters. */
function tally(
  load: Load,
  observer: TopicObserver,
  sink: EmailSink,
  feed: { ids: Set<string> | null; count: number },
  fuzz: boolean,
  before: SinkStats,
): Tally {
  const t: Tally = { processed: 0, lost: 0, duplicates: 0, pending: 0, unfinished: [], notes: [], problems: [] };
  const byService = { feed: [0, 0], email: [0, 0], report: [0, 0], result: [0, 0] };
  let notInTopic = 0;
  let goodDead = 0;
  let badMissing = 0;
  let badRepeated = 0;
  let feedExpected = 0;
  let emailDuplicates = 0;
  let outputDuplicates = 0;
  for (const record of load.records.values()) {
    const copies = observer.inputs.get(record.fid)?.size ?? 0;
    if (copies === 0) {
      notInTopic += 1;
      t.lost += 1;
      continue;
    }
    let ok = true;
    for (const app of CONSUMERS[record.topic]) {
      const dead = observer.deadLetterPositions.get(`${app}|${record.fid}`)?.size ?? 0;
      if (record.good && dead > 0) {
        goodDead += 1;
        ok = false;
      }
      if (!record.good) {
        if (dead === 0) {
          badMissing += 1;
          ok = false;
        } else if (dead > 1) {
          badRepeated += dead - 1;
          if (fuzz) t.duplicates += dead - 1;
        }
      }
    }
    if (record.good && record.id !== null) {
      if (record.topic === 'feed_activities') {
        feedExpected += 1;
        byService.feed[0]! += 1;
        const found = feed.ids ? feed.ids.has(record.id) : true;
        if (found) byService.feed[1]! += 1;
        else ok = false;
      } else if (record.topic === 'orders') {
        byService.email[0]! += 1;
        byService.report[0]! += 1;
        const emails = sink.emailsFor(record.id);
        if (emails > 0) byService.email[1]! += 1;
        else ok = false;
        if (emails > 1) emailDuplicates += emails - 1;
        const reports = observer.reports.get(record.id)?.size ?? 0;
        if (reports > 0) byService.report[1]! += 1;
        else ok = false;
        if (reports > copies) outputDuplicates += reports - copies;
      } else {
        byService.result[0]! += 1;
        const results = observer.results.get(record.id)?.size ?? 0;
        if (results > 0) byService.result[1]! += 1;
        else ok = false;
        if (results > copies) outputDuplicates += results - copies;
      }
    }
    if (ok) t.processed += 1;
    else {
      t.pending += 1;
      if (record.kind !== 'plain') t.unfinished.push(`${record.kind} (${record.good ? 'good' : 'bad'}, ${record.via})`);
    }
  }
  if (!feed.ids) {
    // While draining, only the count of stored activities is known.
    t.pending += Math.max(0, feedExpected - feed.count) - (feedExpected - byService.feed[1]!);
  }
  t.lost += t.pending;
  t.duplicates += emailDuplicates + outputDuplicates;
  const after = sink.stats();
  const s = { repeatedKeys: after.repeatedKeys - before.repeatedKeys, unavailable: after.unavailable - before.unavailable };
  const dead = [...observer.deadLetters.values()];
  const incomplete = dead.filter((d) => !d.complete).length;
  const [f, e, r, q] = [byService.feed, byService.email, byService.report, byService.result];
  t.notes.push(
    `feed-cache ${f[1]}/${f[0]} activities in Redis · order-emailer ${e[1]}/${e[0]} orders emailed, ${emailDuplicates} twice, ${s.repeatedKeys} repeated POSTs absorbed by the Idempotency-Key, ${s.unavailable} answered 503 · execution-quality ${r[1]}/${r[0]} reports · search-enricher ${q[1]}/${q[0]} results · ${outputDuplicates} duplicate outputs (read committed)`,
  );
  if (dead.length > 0 || fuzz) {
    const bad = [...load.records.values()].filter((x) => !x.good).length;
    t.notes.push(
      `dead letters: ${dead.length} (${bad} bad records × their consumers), ${badMissing} missing, ${badRepeated} repeated, ${goodDead} good records dead-lettered, ${incomplete} without full reason headers`,
    );
  }
  if (notInTopic > 0) t.problems.push(`${notInTopic} acknowledged records not found in their input topic`);
  if (emailDuplicates > 0) t.problems.push(`${emailDuplicates} duplicate emails`);
  if (outputDuplicates > 0) t.problems.push(`${outputDuplicates} duplicate read-committed outputs`);
  if (goodDead > 0) t.problems.push(`${goodDead} good records dead-lettered`);
  if (fuzz && badRepeated > 0) t.problems.push(`${badRepeated} bad records dead-lettered more than once`);
  if (incomplete > 0) t.problems.push(`${incomplete} dead letters without their reason headers`);
  return t;
}

/**
 * Where a fault's time went, phase by phase: each {@link Phases.mark} closes the phase that began at the
 * previous mark (or at the start).
 */
export class Phases {
  readonly #list: { name: string; ms: number }[] = [];
  #last: number;

  constructor(started: number) {
    this.#last = started;
  }

  mark(name: string): void {
    const now = Date.now();
    this.#list.push({ name, ms: now - this.#last });
    this.#last = now;
  }

  get list(): readonly { readonly name: string; readonly ms: number }[] {
    return this.#list;
  }
}

/** `groups 0.3 s · start 4.1 s · …`: a fault's phases on one line. */
export function phaseLine(phases: readonly { readonly name: string; readonly ms: number }[]): string {
  return phases.map((p) => `${p.name} ${(p.ms / 1000).toFixed(1)} s`).join(' · ');
}

/** After the drain, how long late duplicates (a redelivery after the last effect) have to show. */
const QUIET_MS = 3000;

/** Runs one fault: fresh groups, the four services, observer, load and injection, then the checks from outside. */
export async function runFault(env: Environment, spec: FaultSpec): Promise<FaultResult> {
  const started = Date.now();
  const phases = new Phases(started);
  const notes: string[] = [];
  const problems: string[] = [];
  const groupSuffix = `${spec.slug}-${started.toString(36)}`;
  const fleet = env.makeFleet(groupSuffix);
  const observerGroup = `faults-observer-${groupSuffix}`;
  // Every topic a service's group consumes: execution-quality's summary agent reads execution_quality_by_symbol
  // in the same group, and a group not placed on it would read what earlier runs left there (a reused stack).
  const serviceTopics: Readonly<Record<ServiceName, readonly string[]>> = {
    'feed-cache': ['feed_activities'],
    'order-emailer': ['orders'],
    'execution-quality': ['orders', slippageBySymbol.name],
    'search-enricher': ['search_queries'],
  };
  await startGroupsAtEnd(env.brokers, [
    ...SERVICES.map((s) => ({ groupId: `${s}-${groupSuffix}`, topics: serviceTopics[s] })),
    { groupId: observerGroup, topics: [...INPUT_TOPICS, ...INPUT_TOPICS.map((t) => deadLetterTopicName(t)), 'execution_quality', 'top_results'] },
  ]);
  phases.mark('groups');
  const hostile = (spec.hostileEvery ?? 0) > 0 ? { every: spec.hostileEvery!, entries: hostileCorpus(), kcat: new KcatProducer(env.brokers[0]!) } : undefined;
  if (hostile) notes.push(`${await ensureKcat()}; hostile corpus of ${hostile.entries.length} entries, every ${hostile.every}th record`);
  const load = new Load(env.producer, {
    slug: groupSuffix,
    total: spec.records,
    rate: spec.rate,
    fuzzEvery: spec.fuzzEvery ?? 0,
    seed: env.seed,
    symbols: env.symbols,
    market: env.market,
    ...(hostile ? { hostile } : {}),
  });
  const observer = new TopicObserver({ brokers: env.brokers, groupId: observerGroup });
  const progress = new Progress(env.redisUrl, load, env.sink, observer);
  const recoveries: Promise<number>[] = [];
  const abort = new AbortController();
  const sinkBefore = env.sink.stats();
  // Bad input runs: every bad record must be dead-lettered exactly once.
  const badInput = (spec.fuzzEvery ?? 0) > 0 || hostile !== undefined;
  let tornDown = false;
  const teardown = async () => {
    if (tornDown) return;
    tornDown = true;
    abort.abort();
    hostile?.kcat.close();
    await Promise.all([fleet.stopAll(), progress.stop(), observer.stop().catch(() => undefined)]);
  };
  try {
    // The services and the observer start together: each group was placed at the end, and nothing is
    // produced before all of them are ready.
    await Promise.all([...SERVICES.map((s) => fleet.start(s)), observer.start()]);
    phases.mark('start');
    progress.start();
    const ctx: FaultContext = {
      fleet,
      load,
      stack: env.stack,
      sink: env.sink,
      producer: env.producer,
      market: env.market,
      records: spec.records,
      random: random(env.seed ^ spec.slug.length),
      expectRecovery: (services, since, ready = Promise.resolve()) => {
        for (const s of services) recoveries.push(progress.resumed(s, since, ready));
      },
      note: (line) => notes.push(line),
      problem: (line) => problems.push(line),
    };
    const producing = load.run(abort.signal);
    const injecting = spec.inject(ctx);
    await producing;
    phases.mark('produce');
    await injecting;
    // The part of the fault that outlasted the load (a server still down or starting, a restart pending).
    phases.mark('fault');

    // Drain: until every effect is visible, or nothing moved for stallMs.
    let last = '';
    let lastChange = Date.now();
    for (;;) {
      const snapshot = tally(load, observer, env.sink, { ids: null, count: progress.count('feed-cache') }, badInput, sinkBefore);
      if (snapshot.pending === 0 && snapshot.lost === 0) break;
      const now = `${snapshot.pending}|${SERVICES.map((s) => progress.count(s)).join('|')}|${observer.inputs.size}|${observer.deadLetters.size}`;
      if (now !== last) {
        last = now;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > env.stallMs) break;
      await sleep(200);
    }
    phases.mark('drain');
    // Late duplicates (a redelivery after the last effect) still have a moment to show, the services running.
    await sleep(QUIET_MS);
    phases.mark('quiet');
    if (spec.strict) {
      problems.push(...fleet.exited().map((e) => `a service process exited during the run: ${e}`));
      const rss = fleet.peakRssMiB();
      notes.push(`peak RSS (MiB): ${rss.map((r) => `${r.name} ${r.mib.toFixed(0)}`).join(', ')} (bound ${spec.strict.maxRssMiB})`);
      for (const r of rss)
        if (r.mib > spec.strict.maxRssMiB) problems.push(`${r.name} (pid ${r.pid}) peaked at ${r.mib.toFixed(0)} MiB RSS, over ${spec.strict.maxRssMiB}`);
    }
    const stopFailures = await fleet.stopAll();
    phases.mark('stop');
    problems.push(...stopFailures.map((f) => `did not stop cleanly: ${f}`));
    if (spec.strict) {
      const behind = await committedBehind(SERVICES.map((s) => ({ groupId: `${s}-${groupSuffix}`, topic: serviceTopics[s][0]! })));
      if (behind.length > 0) problems.push(`committed offsets short of the end: ${behind.join(', ')}`);
      else notes.push(`every partition's committed offset reached its end offset (${SERVICES.length} groups)`);
    }
    const ids = await progress.feedIds();
    const final = tally(load, observer, env.sink, { ids, count: ids.size }, badInput, sinkBefore);
    const times = await Promise.all(recoveries);
    if (final.unfinished.length > 0) problems.push(`not processed or dead-lettered as expected: ${summarize(final.unfinished)}`);
    if (hostile) {
      const corpus = [...load.records.values()].filter((r) => r.kind.includes('/'));
      notes.push(
        `hostile records: ${corpus.length} (${corpus.filter((r) => r.good).length} good, ${corpus.filter((r) => !r.good).length} bad; ${corpus.filter((r) => r.via === 'kcat').length} through kcat)`,
      );
    }
    phases.mark('verify');
    await teardown();
    phases.mark('teardown');
    return {
      title: spec.title,
      recordsIn: load.records.size,
      processed: final.processed,
      lost: final.lost,
      duplicates: final.duplicates,
      deadLettered: observer.deadLetters.size,
      recoverMs: times.length === 0 ? null : Math.max(...times),
      durationMs: Date.now() - started,
      problems: [...problems, ...final.problems, ...(final.lost > 0 ? [`${final.lost} records lost`] : [])],
      notes: [...notes, ...final.notes, `phases: ${phaseLine(phases.list)}`],
      phases: phases.list,
    };
  } finally {
    await teardown();
  }
}

/** `a (good, kcat) ×2, b (bad, kafkajs)`: repeated entries counted. */
function summarize(items: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return [...counts].map(([item, n]) => (n > 1 ? `${item} ×${n}` : item)).join(', ');
}

/** For each group, the partitions of its topic whose committed offset is short of the end offset: `group topic/p committed/end`. */
async function committedBehind(groups: ReadonlyArray<{ groupId: string; topic: string }>): Promise<string[]> {
  return withAdmin(async (admin) => {
    const behind: string[] = [];
    for (const { groupId, topic } of groups) {
      const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, p.high]));
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      for (const [partition, end] of ends) {
        const offset = committed?.partitions.find((p) => p.partition === partition)?.offset ?? '-1';
        if (BigInt(offset) < BigInt(end)) behind.push(`${groupId} ${topic}/${partition} ${offset}/${end}`);
      }
    }
    return behind;
  });
}
