/**
 * search-enricher on the real Kafka and Elasticsearch (`pnpm stack up`): 2,000 queries through an
 * exactly-once app, which is stopped half-way and replaced by a second instance of the same app. A
 * read-committed consumer must see exactly one result per query, each equal to a direct single search.
 * Topics, consumer groups and the index are unique to the run and deleted afterwards.
 */
import type { Client } from '@elastic/elasticsearch';
import { SearchQuery, TopResult } from '@stream/contracts';
import { createApp, defineTopic, silentLogger, type App } from '@stream/core';
import { deleteTopics, localServers, requireServers, testKafka, uniqueName } from '@stream/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { corpusIndex, dropIndex, testClient, waitFor } from '../test/support.js';
import { searchEnricherAgent } from './agent.js';
import { corpusDocument } from './corpus.js';
import { batchedSearcher, singleSearcher, type SearcherOptions } from './searcher.js';

const QUERIES = 2000;
const DISTINCT = 400;

const input = defineTopic({ name: uniqueName('search-queries'), key: z.string().min(1), value: SearchQuery, partitions: 3 });
const output = defineTopic({ name: uniqueName('top-results'), key: z.string().min(1), value: TopResult, partitions: 3 });
const appId = uniqueName('search-enricher-it');

/** 400 texts of every kind (corpus words, unknown words, hostile text), each used five times. */
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

describe('search-enricher on Kafka and Elasticsearch', () => {
  let client: Client;
  let index: string;
  let options: SearcherOptions;
  const apps: App[] = [];

  function startApp(): Promise<App> {
    const app = createApp({ id: appId, brokers: localServers().kafkaBrokers, createTopics: true, outputs: [output], logger: silentLogger(), commitIntervalMs: 200 });
    searchEnricherAgent(app, input, output, batchedSearcher(client, options, { maxBatch: 64, maxWaitMs: 2 }), { concurrency: 64 });
    apps.push(app);
    return app.start().then(() => app);
  }

  beforeAll(async () => {
    await requireServers('kafka', 'elasticsearch');
    client = testClient(localServers().elasticsearchUrl, 30_000);
    index = await corpusIndex(client, 300, 'se-it');
    options = { index, fields: ['title^2', 'body', 'tags'], maxQueryChars: 1000, timeoutMs: 30_000 };
  });

  afterAll(async () => {
    for (const app of apps) if (app.state === 'running') await app.stop();
    await deleteTopics([input.name, output.name, `${input.name}.dlq`]);
    await dropIndex(client, index);
    await client.close();
  });

  it('publishes exactly one result per query, equal to a direct search, across a restart', async () => {
    const first = await startApp();

    const producer = testKafka().producer();
    await producer.connect();
    for (let start = 0; start < QUERIES; start += 500) {
      const messages = Array.from({ length: Math.min(500, QUERIES - start) }, (_, k) => {
        const id = `q-${start + k}`;
        return { key: id, value: JSON.stringify({ id, queryString: text(start + k), userId: `u${(start + k) % 17}`, timestamp: '2026-01-01T00:00:00.000Z' }) };
      });
      await producer.send({ topic: input.name, messages });
    }
    await producer.disconnect();

    const seen = new Map<string, { count: number; value: TopResult }>();
    const consumer = testKafka().consumer({ groupId: uniqueName('se-it-reader'), readUncommitted: false });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: output.name, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          const key = message.key?.toString() ?? '';
          const value = JSON.parse(message.value?.toString() ?? 'null') as TopResult;
          const entry = seen.get(key);
          seen.set(key, { count: (entry?.count ?? 0) + 1, value });
        },
      });

      // Stop the first instance part-way through and let a second one finish the work.
      await waitFor(() => seen.size >= 400, 'the first instance to publish 400 results', 120_000);
      const stopped = await first.stop();
      expect(stopped.timedOut).toBe(false);
      await startApp();

      await waitFor(() => seen.size >= QUERIES, `${QUERIES} results`, 180_000);
      // Leave time for duplicates to show up, were there any.
      await new Promise((resolve) => setTimeout(resolve, 2000));
    } finally {
      await consumer.disconnect();
    }

    expect(seen.size).toBe(QUERIES);
    const duplicated = [...seen].filter(([, e]) => e.count !== 1).map(([k]) => k);
    expect(duplicated).toEqual([]);

    const single = singleSearcher(client, options);
    const expected = new Map<string, unknown>();
    for (let i = 0; i < DISTINCT; i += 8) {
      const texts = Array.from({ length: Math.min(8, DISTINCT - i) }, (_, k) => text(i + k));
      const hits = await Promise.all(texts.map((t) => single.top(t)));
      texts.forEach((t, k) => expected.set(t, hits[k]!.hit));
    }
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
  });
});
