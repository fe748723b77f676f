/**
 * Scenario 5: each service end to end on its real server, ours (the service's own agent code on
 * `createApp`) against a hand-written kafkajs consumer doing the same I/O with the same client library:
 *
 * - `service-feed-cache`: activities → Redis sorted sets (ioredis MULTI: ZADD + trim);
 * - `service-order-emailer`: orders → Redis claim, POST to a local email sink answering in 20 ms (got), Redis `sent`;
 * - `service-execution-quality`: orders → Flux window queries per symbol on InfluxDB → reports, exactly-once;
 * - `service-search-enricher`: queries → Elasticsearch msearch → top results, exactly-once.
 *
 * The ratio is ours / baseline records per second: what the framework costs (or gains) over hand-written code.
 */
import { Client } from '@elastic/elasticsearch';
import { seedMarketData } from '@stream/execution-quality';
import { corpusDocument, createCorpusIndex, indexDocuments } from '@stream/search-enricher';
import { createInfluxBucket, dropInfluxBucket, localServers, requireServers, uniqueName, type ServerName } from '@stream/local-stack';
import { Redis } from 'ioredis';
import { generate, type DatasetSpec } from '../data.js';
import { EmailSink } from '@stream/local-stack';
import { CORPUS_DOCS, MARKET, marketSymbols } from '../service-data.js';
import { ratio } from '../stats.js';
import { checkViolations, DEFAULT_SIDE_CONFIG, outputViolations, runPair, summarize, type PerRunSide, type RunSetup, type Side } from './pair.js';
import type { Scenario, ScenarioContext } from './types.js';

/** Ours must reach this share of the hand-written baseline's records/s. */
const TARGET = 0.8;
const API_DELAY_MS = 20;

/** What a service scenario sets up once (servers' data) and per run. */
interface ServiceSetup {
  readonly perRun: (which: PerRunSide, round: number) => Promise<RunSetup>;
  readonly close: () => Promise<void>;
}

interface ServiceScenarioSpec {
  readonly name: string;
  readonly title: string;
  readonly description: string;
  readonly servers: readonly ServerName[];
  readonly data: (quick: boolean) => DatasetSpec;
  /** The service produces to an output topic (read back and counted after each run). */
  readonly output: boolean;
  readonly exactlyOnce: boolean;
  readonly ours: Side;
  readonly baseline: Side;
  /** Worst expected records/s, for the per-run deadline. */
  readonly slowestPerSec: number;
  readonly setup: (ctx: ScenarioContext, data: DatasetSpec) => Promise<ServiceSetup>;
  readonly notes: readonly string[];
  /** Default: ours ≥ {@link TARGET}× the hand-written baseline's records/s. */
  readonly target?: { readonly min: number; readonly words: string };
}

function serviceScenario(spec: ServiceScenarioSpec): Scenario {
  const scenario: Scenario = {
    name: spec.name,
    title: spec.title,
    description: spec.description,
    defaultRounds: { quick: 1, full: 2 },
    async run(ctx) {
      await requireServers(...spec.servers);
      const data = spec.data(ctx.quick);
      const setup = await spec.setup(ctx, data);
      try {
        const runs = await runPair(ctx, {
          scenario: spec.name,
          data,
          output: spec.output,
          deadlineMs: () => Math.max(120_000, (data.records / spec.slowestPerSec) * 1000),
          ours: spec.ours,
          baseline: spec.baseline,
          perRun: setup.perRun,
        });
        const ours = summarize(spec.ours.label, runs.ours);
        const baseline = summarize(spec.baseline.label, runs.baseline);
        const r = ratio(ours.recordsPerSec, baseline.recordsPerSec);
        const target = spec.target ?? { min: TARGET, words: `≥ ${TARGET}× hand-written kafkajs records/s` };
        const diagnostics = (side: typeof runs.ours) => side.map((m) => m.diagnostics);
        return {
          scenario: spec.name,
          title: spec.title,
          params: { ...data, ours: spec.ours.config, baseline: spec.baseline.config },
          ours,
          baseline,
          ratio: r,
          ratioMetric: 'recordsPerSec',
          target: target.words,
          targetMet: r >= target.min,
          extra: { oursDiagnostics: diagnostics(runs.ours), baselineDiagnostics: diagnostics(runs.baseline) },
          violations: [
            ...outputViolations('ours', runs.ours, spec.exactlyOnce),
            ...outputViolations('baseline', runs.baseline, spec.exactlyOnce),
            ...checkViolations('ours', runs.ours),
            ...checkViolations('baseline', runs.baseline),
          ],
          notes: [
            ...spec.notes,
            'End to end: from the first record handed to user code to the last record done (exactly-once: its transaction committed); the input is in the topic before the consumer starts.',
          ],
        };
      } finally {
        await setup.close();
      }
    },
  };
  return scenario;
}

/** Deletes keys in chunks (UNLINK), ignoring ones that are gone. */
async function deleteKeys(redis: Redis, keys: readonly string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) await redis.unlink(...keys.slice(i, i + 1000));
}

const FEED_MAX_ITEMS = 500;

export const serviceFeedCache = serviceScenario({
  name: 'service-feed-cache',
  title: 'Service: feed-cache on Redis',
  description: 'feed-cache batch agent (500 / 20 ms per partition, partitions side by side, MULTI ZADD + trim) on Redis vs kafkajs eachBatch + ioredis MULTI',
  servers: ['kafka', 'redis'],
  data: (quick) => ({ kind: 'feed', records: quick ? 5_000 : 100_000, partitions: 6, keys: 1_000, seed: 11 }),
  output: false,
  exactlyOnce: false,
  ours: { label: 'feedAgent (batch agent, 500 / 20 ms per partition) + FeedStore', program: 'ours-feed-cache', config: { ...DEFAULT_SIDE_CONFIG } },
  baseline: {
    label: 'kafkajs eachBatch (6 partitions at once) + ioredis MULTI',
    program: 'kafkajs-feed-cache',
    config: { ...DEFAULT_SIDE_CONFIG, partitionsConsumedConcurrently: 6 },
  },
  slowestPerSec: 500,
  async setup(_ctx, data) {
    const redis = new Redis(localServers().redisUrl, { maxRetriesPerRequest: 1 });
    // Per user, how many activities the data set has: each feed must end with min(count, maxItems) entries.
    const perUser = new Map<string, number>();
    for (const record of generate(data)) perUser.set(record.key, (perUser.get(record.key) ?? 0) + 1);
    return {
      async perRun() {
        const keyPrefix = `${uniqueName('bench-feed')}:`;
        const keys = [...perUser.keys()].map((user) => `${keyPrefix}${user}`);
        return {
          service: { redisUrl: localServers().redisUrl, keyPrefix, maxItems: FEED_MAX_ITEMS },
          async check() {
            const pipeline = redis.pipeline();
            for (const key of keys) pipeline.zcard(key);
            const cards = (await pipeline.exec()) ?? [];
            let wrong = 0;
            [...perUser.values()].forEach((n, i) => {
              if (cards[i]?.[1] !== Math.min(n, FEED_MAX_ITEMS)) wrong += 1;
            });
            return wrong > 0 ? [`${wrong} of ${keys.length} feeds do not hold their newest ${FEED_MAX_ITEMS} activities`] : [];
          },
          cleanup: () => deleteKeys(redis, keys),
        };
      },
      async close() {
        await redis.quit();
      },
    };
  },
  notes: [
    `Check after each run: every user's sorted set holds min(activities, ${FEED_MAX_ITEMS}) entries.`,
    'Both write each fetched/taken batch in one MULTI round trip; the baseline works on the 6 partitions at once, ours runs one stream loop over them.',
  ],
});

const EMAILER_CONCURRENCY = 64;

/** What is wrong with the 2xx answers of orders `o-0` … `o-(n-1)` (per Idempotency-Key): none missing, none twice, nothing else. */
function emailProblems(delivered: ReadonlyMap<string, number>, n: number): string[] {
  const problems: string[] = [];
  let missing = 0;
  let twice = 0;
  for (let i = 0; i < n; i += 1) {
    const c = delivered.get(`o-${i}`) ?? 0;
    if (c === 0) missing += 1;
    else if (c > 1) twice += 1;
  }
  if (missing > 0) problems.push(`${missing} orders without a successful POST`);
  if (twice > 0) problems.push(`${twice} orders POSTed successfully more than once`);
  if (delivered.size > n) problems.push(`${delivered.size - n} POSTs of unknown orders`);
  return problems;
}

export const serviceOrderEmailer = serviceScenario({
  name: 'service-order-emailer',
  title: `Service: order-emailer, email API answering in ${API_DELAY_MS} ms`,
  description: `order-emailer agent (Redis claim, got POST, Redis sent; concurrency ${EMAILER_CONCURRENCY}) vs kafkajs eachBatch doing the same I/O`,
  servers: ['kafka', 'redis'],
  data: (quick) => ({ kind: 'orders', records: quick ? 1_000 : 10_000, partitions: 6, keys: 1_000, seed: 12 }),
  output: false,
  exactlyOnce: false,
  ours: {
    label: `emailerAgent + OrderConfirmer, concurrency ${EMAILER_CONCURRENCY}`,
    program: 'ours-order-emailer',
    config: { ...DEFAULT_SIDE_CONFIG, concurrency: EMAILER_CONCURRENCY },
  },
  baseline: {
    label: `kafkajs eachBatch (6 partitions at once), ${EMAILER_CONCURRENCY} orders in flight: SET NX, got POST, SET sent`,
    program: 'kafkajs-order-emailer',
    config: { ...DEFAULT_SIDE_CONFIG, concurrency: EMAILER_CONCURRENCY, partitionsConsumedConcurrently: 6 },
  },
  slowestPerSec: 100,
  async setup(_ctx, data) {
    const redis = new Redis(localServers().redisUrl, { maxRetriesPerRequest: 1 });
    const sink = await EmailSink.start({ latencyMs: API_DELAY_MS });
    return {
      async perRun() {
        sink.reset();
        const keyPrefix = `${uniqueName('bench-emailer')}:`;
        return {
          service: { redisUrl: localServers().redisUrl, keyPrefix, emailerUrl: sink.url, token: 'bench-token' },
          check: async () => emailProblems(sink.delivered(), data.records),
          cleanup: () =>
            deleteKeys(
              redis,
              Array.from({ length: data.records }, (_, i) => `${keyPrefix}o-${i}`),
            ),
        };
      },
      async close() {
        await sink.close();
        await redis.quit();
      },
    };
  },
  notes: [
    `The email API is a local HTTP server run by the bench runner (not the measured process) answering every POST 200 after ${API_DELAY_MS} ms.`,
    'Check after each run: every order has exactly one successful POST (by Idempotency-Key), nothing else was POSTed.',
    'Per order, both make 2 Redis round trips and 1 POST (ours: claim script, POST, SET sent; baseline: SET NX, POST, SET sent).',
  ],
});

export const serviceExecutionQuality = serviceScenario({
  name: 'service-execution-quality',
  title: 'Service: execution-quality on InfluxDB, exactly-once',
  description:
    'execution-quality batch agent (its defaults: 500 orders / 20 ms per partition, one Flux query per symbol per batch, exactly-once) vs kafkajs eachBatch + transactions',
  servers: ['kafka', 'influxdb'],
  data: (quick) => ({ kind: 'orders', records: quick ? 1_000 : 5_000, partitions: 6, keys: 1_000, seed: 13, symbols: quick ? 10 : 50 }),
  output: true,
  exactlyOnce: true,
  ours: {
    label: 'executionQualityAgent (batch agent, service defaults) + MarketPrices, exactlyOnce',
    program: 'ours-execution-quality',
    config: { ...DEFAULT_SIDE_CONFIG },
  },
  baseline: {
    label: 'kafkajs eachBatch + transaction per batch, one Flux window query per symbol of the batch',
    program: 'kafkajs-execution-quality',
    config: { ...DEFAULT_SIDE_CONFIG },
  },
  slowestPerSec: 20,
  async setup(_ctx, data) {
    const servers = localServers();
    const database = uniqueName('bench_eq').replace(/-/g, '_');
    const bucket = await createInfluxBucket(database);
    const target = { url: servers.influxUrl, token: servers.influxToken, org: servers.influxOrg, bucket };
    await seedMarketData(target, {
      symbols: marketSymbols(data.symbols ?? 10),
      points: MARKET.points,
      start: MARKET.start,
      stepMs: MARKET.stepMs,
      seed: MARKET.seed,
    });
    return {
      perRun: async () => ({
        service: { influxUrl: servers.influxUrl, influxToken: servers.influxToken, influxOrg: servers.influxOrg, bucket, lookbackMs: MARKET.lookbackMs },
      }),
      close: () => dropInfluxBucket(database),
    };
  },
  notes: [
    'Market data: one point a second for 10 minutes per symbol, seeded once per scenario; some orders lie outside it (no_market_data).',
    'InfluxDB queries of each run are in extra.*Diagnostics.influxQueries.',
    'Outputs read back with read_committed: each order exactly once on both sides.',
  ],
});

const SEARCH_CONCURRENCY = 64;
const SEARCH_BATCH = { size: 64, withinMs: 2 };

/** The search index of the search-enricher scenarios, created once per scenario. */
async function searchSetup(): Promise<ServiceSetup> {
  const client = new Client({ node: localServers().elasticsearchUrl, requestTimeout: 60_000 });
  const index = uniqueName('bench-search');
  await createCorpusIndex(client, index);
  await indexDocuments(
    client,
    index,
    Array.from({ length: CORPUS_DOCS }, (_, n) => corpusDocument(n)),
  );
  return {
    perRun: async () => ({ service: { elasticsearchUrl: localServers().elasticsearchUrl, index } }),
    async close() {
      await client.indices.delete({ index, ignore_unavailable: true });
      await client.close();
    },
  };
}

const searchData = (quick: boolean): DatasetSpec => ({ kind: 'search', records: quick ? 1_000 : 5_000, partitions: 6, keys: 100, seed: 14 });
const SEARCH_NOTES = [
  `Index: ${CORPUS_DOCS} generated products; 400 distinct query texts (titles, tags, body text, unknown words).`,
  'Outputs read back with read_committed: each query exactly once on both sides.',
];

export const serviceSearchEnricher = serviceScenario({
  name: 'service-search-enricher',
  title: 'Service: search-enricher on Elasticsearch, exactly-once',
  description: `search-enricher agent (batchedSearcher msearch ≤ ${SEARCH_BATCH.size}, exactly-once, concurrency ${SEARCH_CONCURRENCY}) vs kafkajs eachBatch + msearch + transactions`,
  servers: ['kafka', 'elasticsearch'],
  data: searchData,
  output: true,
  exactlyOnce: true,
  ours: {
    label: `searchEnricherAgent + batchedSearcher (msearch ≤ ${SEARCH_BATCH.size}, ${SEARCH_BATCH.withinMs} ms), exactlyOnce, concurrency ${SEARCH_CONCURRENCY}`,
    program: 'ours-search-enricher',
    config: { ...DEFAULT_SIDE_CONFIG, mode: 'batched', concurrency: SEARCH_CONCURRENCY, take: SEARCH_BATCH },
  },
  baseline: {
    label: `kafkajs eachBatch + msearch of ${SEARCH_BATCH.size} + transaction per batch`,
    program: 'kafkajs-search-enricher',
    config: { ...DEFAULT_SIDE_CONFIG, take: SEARCH_BATCH },
  },
  slowestPerSec: 50,
  setup: searchSetup,
  notes: SEARCH_NOTES,
});

/** The same agent with one search per query: the baseline of the batching comparison. */
export const serviceSearchBatching = serviceScenario({
  name: 'service-search-batching',
  title: 'Service: search-enricher, msearch batching vs one search per query',
  description: `search-enricher agent with batchedSearcher (msearch ≤ ${SEARCH_BATCH.size}) vs the same agent with singleSearcher, concurrency ${SEARCH_CONCURRENCY}`,
  servers: ['kafka', 'elasticsearch'],
  data: searchData,
  output: true,
  exactlyOnce: true,
  ours: {
    label: `searchEnricherAgent + batchedSearcher (msearch ≤ ${SEARCH_BATCH.size}, ${SEARCH_BATCH.withinMs} ms), concurrency ${SEARCH_CONCURRENCY}`,
    program: 'ours-search-enricher',
    config: { ...DEFAULT_SIDE_CONFIG, mode: 'batched', concurrency: SEARCH_CONCURRENCY, take: SEARCH_BATCH },
  },
  baseline: {
    label: `searchEnricherAgent + singleSearcher (one search per query), concurrency ${SEARCH_CONCURRENCY}`,
    program: 'ours-search-enricher',
    config: { ...DEFAULT_SIDE_CONFIG, mode: 'single', concurrency: SEARCH_CONCURRENCY },
  },
  slowestPerSec: 50,
  setup: searchSetup,
  notes: [...SEARCH_NOTES, 'Both sides are our agent: the ratio is what batching searches into msearch gains end to end.'],
  target: { min: 1, words: '≥ 1× one search per query (batching pays for itself)' },
});

export const serviceScenarios: readonly Scenario[] = [
  serviceFeedCache,
  serviceOrderEmailer,
  serviceExecutionQuality,
  serviceSearchEnricher,
  serviceSearchBatching,
];
