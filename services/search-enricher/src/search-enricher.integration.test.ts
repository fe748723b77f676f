/**
 * search-enricher on the real Kafka and Elasticsearch (`pnpm stack up`).
 *
 * 1. Throughput: 5,000 queries end to end through an exactly-once app, once with `batchedSearcher`
 *    (msearch) and once with `singleSearcher` (one search per query); each run prints its queries/s.
 * 2. Outage: 5,000 queries streamed at a steady rate through an exactly-once app that is replaced by a second
 *    instance part-way, while the real Elasticsearch is **stopped and started again** mid-stream
 *    (`stack.sh down/up elasticsearch`, shared with every test running at the time: it always comes back).
 *
 * Each time a read-committed consumer must see exactly one result per query, each checked one by one against
 * a direct single search. Topics, consumer groups and the index are unique to the run and deleted afterwards.
 */
import type { Client } from '@elastic/elasticsearch';
import { SearchQuery, TopResult } from '@stream/contracts';
import { createApp, deadLetterTopicName, defineTopic, silentLogger, type App } from '@stream/core';
import { deleteTopics, localServers, requireServers, stopServer, startServer, testKafka, uniqueName } from '@stream/local-stack';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { corpusIndex, dropIndex, testClient, waitFor } from '../test/support.js';
import { searchEnricherAgent } from './agent.js';
import { corpusDocument } from './corpus.js';
import { batchedSearcher, singleSearcher, type SearcherOptions, type TopHitSearcher } from './searcher.js';

const QUERIES = 5000;
const DISTINCT = 400;
const CONCURRENCY = 64;
const BATCH = { maxBatch: 64, maxWaitMs: 2 };

/** 400 texts of every kind (corpus words, unknown words, hostile text), each used QUERIES / 400 times. */
function text(n: number): string {
  const i = n % DISTINCT;
  const doc = corpusDocument((i * 11) % 300);
  switch (i % 5) {
    case 0:
      return doc.title;
    case 1:
      return `${doc.tags[0]} ${doc.category}`;
    case 2:
      return `unknown${i} words${i}`;
    case 3:
      return i % 2 ? '*:*' : `${doc.body.split(' ')[2]} OR title:x`;
    default:
      return doc.body;
  }
}

function queryMessage(n: number): { key: string; value: string } {
  const id = `q-${n}`;
  return { key: id, value: JSON.stringify({ id, queryString: text(n), userId: `u${n % 17}`, timestamp: '2026-01-01T00:00:00.000Z' }) };
}

/** Results as a read-committed consumer sees them: query id -> how many and the last value. */
class ResultReader {
  readonly seen = new Map<string, { count: number; value: TopResult }>();
  readonly #consumer = testKafka().consumer({ groupId: uniqueName('se-it-reader'), readUncommitted: false });

  async start(topic: string): Promise<void> {
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topic, fromBeginning: true });
    await this.#consumer.run({
      eachMessage: async ({ message }) => {
        const key = message.key?.toString() ?? '';
        const value = JSON.parse(message.value?.toString() ?? 'null') as TopResult;
        const entry = this.seen.get(key);
        this.seen.set(key, { count: (entry?.count ?? 0) + 1, value });
      },
    });
  }

  stop(): Promise<void> {
    return this.#consumer.disconnect();
  }
}

describe('search-enricher on Kafka and Elasticsearch', () => {
  let client: Client;
  let index: string;
  let options: SearcherOptions;
  const apps: App[] = [];
  const topics: string[] = [];
  /** The direct single search of each distinct text, computed once while Elasticsearch is up. */
  const expected = new Map<string, unknown>();

  function ioTopics(name: string) {
    const input = defineTopic({ name: uniqueName(`${name}-queries`), key: z.string().min(1), value: SearchQuery, partitions: 3 });
    const output = defineTopic({ name: uniqueName(`${name}-results`), key: z.string().min(1), value: TopResult, partitions: 3 });
    topics.push(input.name, output.name, deadLetterTopicName(input.name));
    return { input, output };
  }

  async function startApp(id: string, io: ReturnType<typeof ioTopics>, searcher: TopHitSearcher): Promise<App> {
    const app = createApp({
      id,
      brokers: localServers().kafkaBrokers,
      createTopics: true,
      outputs: [io.output],
      logger: silentLogger(),
      commitIntervalMs: 200,
    });
    searchEnricherAgent(app, io.input, io.output, searcher, { concurrency: CONCURRENCY });
    apps.push(app);
    await app.start();
    return app;
  }

  /** Exactly one result per query, each equal to the direct single search of its text. */
  function check(seen: ReadonlyMap<string, { count: number; value: TopResult }>): void {
    expect(seen.size).toBe(QUERIES);
    const duplicated = [...seen].filter(([, e]) => e.count !== 1).map(([k]) => k);
    expect(duplicated).toEqual([]);
    let nulls = 0;
    for (let n = 0; n < QUERIES; n += 1) {
      const got = seen.get(`q-${n}`)!.value;
      expect(got).toMatchObject({ id: `q-${n}`, queryString: text(n), userId: `u${n % 17}`, timestamp: '2026-01-01T00:00:00.000Z' });
      expect(got.tookMs).toBeGreaterThanOrEqual(0);
      expect(got.topResult, `q-${n}: ${text(n)}`).toEqual(expected.get(text(n)));
      if (got.topResult === null) nulls += 1;
    }
    // Of every 400 texts, 80 unknown-word texts and 40 "*:*" find nothing; corpus words always find something.
    expect(nulls).toBe((QUERIES / DISTINCT) * (80 + 40));
  }

  beforeAll(async () => {
    await requireServers('kafka', 'elasticsearch');
    client = testClient(localServers().elasticsearchUrl, 30_000);
    index = await corpusIndex(client, 300, 'se-it');
    options = { index, fields: ['title^2', 'body', 'tags'], maxQueryChars: 1000, timeoutMs: 30_000 };
    const single = singleSearcher(client, options);
    for (let i = 0; i < DISTINCT; i += 8) {
      const texts = Array.from({ length: Math.min(8, DISTINCT - i) }, (_, k) => text(i + k));
      const hits = await Promise.all(texts.map((t) => single.top(t)));
      texts.forEach((t, k) => expected.set(t, hits[k]!.hit));
    }
  });

  afterAll(async () => {
    for (const app of apps) if (app.state === 'running') await app.stop();
    await deleteTopics(topics);
    await dropIndex(client, index);
    await client.close();
  });

  for (const mode of ['batched', 'single'] as const) {
    it(`${QUERIES.toLocaleString('en-US')} queries end to end with ${mode === 'batched' ? 'batchedSearcher (msearch)' : 'singleSearcher'}: one result each, queries/s reported`, async () => {
      const io = ioTopics(`se-tp-${mode}`);
      const searcher = mode === 'batched' ? batchedSearcher(client, options, BATCH) : singleSearcher(client, options);
      const app = await startApp(uniqueName(`search-enricher-tp-${mode}`), io, searcher);
      const reader = new ResultReader();
      await reader.start(io.output.name);
      try {
        // End to end: from the first query sent to the last result visible to a read-committed consumer.
        const started = performance.now();
        const producer = testKafka().producer();
        await producer.connect();
        for (let start = 0; start < QUERIES; start += 500) {
          await producer.send({ topic: io.input.name, messages: Array.from({ length: Math.min(500, QUERIES - start) }, (_, k) => queryMessage(start + k)) });
        }
        await producer.disconnect();
        await waitFor(() => reader.seen.size >= QUERIES, `${QUERIES} results`, 240_000);
        const seconds = (performance.now() - started) / 1000;
        // Measured, never asserted: the machine is shared.
        console.log(
          `search-enricher (${mode === 'batched' ? `batchedSearcher maxBatch ${BATCH.maxBatch}, maxWait ${BATCH.maxWaitMs} ms` : 'singleSearcher'}): ` +
            `${QUERIES} queries end to end in ${seconds.toFixed(2)} s = ${Math.round(QUERIES / seconds)} queries/s (concurrency ${CONCURRENCY}, 3 partitions, exactly-once)`,
        );
        const stopped = await app.stop();
        expect(stopped.timedOut).toBe(false);
        await sleep(1000); // time for any duplicate to show up
      } finally {
        await reader.stop();
      }
      check(reader.seen);
    }, 300_000);
  }

  // Last: it stops the shared Elasticsearch.
  it(`${QUERIES.toLocaleString('en-US')} queries streamed across an app restart and an Elasticsearch stop and restart: exactly one result each, equal to a direct search`, async () => {
    const io = ioTopics('se-outage');
    const appId = uniqueName('search-enricher-it');
    const first = await startApp(appId, io, batchedSearcher(client, options, BATCH));
    const reader = new ResultReader();
    await reader.start(io.output.name);

    // The queries arrive at ~250 a second for ~20 s, so the restart and the outage happen mid-stream.
    let sent = 0;
    const producer = testKafka().producer();
    await producer.connect();
    const sending = (async () => {
      for (let start = 0; start < QUERIES; start += 50) {
        await producer.send({ topic: io.input.name, messages: Array.from({ length: Math.min(50, QUERIES - start) }, (_, k) => queryMessage(start + k)) });
        sent = Math.min(QUERIES, start + 50);
        await sleep(200);
      }
    })();

    let esStopped = false;
    try {
      // A second instance of the same app takes over from the first part-way through.
      await waitFor(() => reader.seen.size >= 600, 'the first instance to publish 600 results', 120_000);
      const stopped = await first.stop();
      expect(stopped.timedOut).toBe(false);
      await startApp(appId, io, batchedSearcher(client, options, BATCH));

      // Elasticsearch goes away while queries keep arriving and searches are in flight.
      await waitFor(() => reader.seen.size >= 1500, '1,500 results', 120_000);
      await stopServer('elasticsearch');
      esStopped = true;
      await sleep(2000);
      const duringOutage = reader.seen.size;
      const sentBefore = sent;
      await sleep(4000);
      // Nothing is published while the cluster is down (searches fail and are retried), while queries still arrive.
      expect(reader.seen.size).toBe(duringOutage);
      expect(duringOutage).toBeLessThan(QUERIES);
      console.log(`search-enricher outage: Elasticsearch stopped at ${duringOutage} results; ${sent - sentBefore} queries arrived in 4 s while it was down`);
      await startServer('elasticsearch');
      esStopped = false;

      await sending;
      await waitFor(() => reader.seen.size >= QUERIES, `${QUERIES} results after Elasticsearch came back`, 240_000);
      // Leave time for duplicates to show up, were there any.
      await sleep(2000);
    } finally {
      if (esStopped) await startServer('elasticsearch');
      await sending.catch(() => undefined);
      await producer.disconnect();
      await reader.stop();
    }
    check(reader.seen);
  }, 600_000);
});
