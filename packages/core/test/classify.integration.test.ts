/**
 * The default classification against what the real clients throw, talking to the real servers (and to
 * ports where nothing listens): an outage must read as a dependency's fault, a request the server refuses as
 * the record's. A client whose errors change shape in an upgrade fails here, not in production.
 * No Kafka client plays a part (the agent test runs on the in-memory harness), so this file runs once, not
 * once per Kafka client as the other in-process integration tests do (test/fixtures.ts, kafkaClients).
 */
import { Client as Elasticsearch } from '@elastic/elasticsearch';
import { InfluxDB } from '@influxdata/influxdb-client';
import { localServers, requireServers, uniqueName } from '@stream/local-stack';
import got from 'got';
import { Redis } from 'ioredis';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { classifyFailure, defineTopic, type FailureClass } from '../src/index.js';
import { createTestApp } from '../src/testing/index.js';

const servers = localServers();

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function thrown(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

async function classOf(work: () => Promise<unknown>): Promise<FailureClass> {
  return classifyFailure(await thrown(work));
}

describe('classifyFailure on real client errors', () => {
  let http: Server;
  let httpPort: number;
  let closed: number;

  beforeAll(async () => {
    await requireServers('redis', 'influxdb', 'elasticsearch');
    closed = await closedPort();
    // A real HTTP server answering the status the path names, or never answering /slow.
    http = createServer((req, res) => {
      if (req.url === '/slow') return;
      res.writeHead(Number(req.url?.slice(1)), { 'content-type': 'application/json' });
      res.end('{}');
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    httpPort = (http.address() as AddressInfo).port;
  });
  afterAll(async () => {
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });

  describe('got', () => {
    it('connection refused: the server', async () => {
      expect(await classOf(() => got.post(`http://127.0.0.1:${closed}/send`, { retry: { limit: 0 } }))).toEqual({
        kind: 'dependency',
        dependency: `http 127.0.0.1:${closed}`,
      });
    });
    it.each([500, 502, 503, 429, 408])('HTTP %i: the server', async (status) => {
      expect(await classOf(() => got.post(`http://127.0.0.1:${httpPort}/${status}`, { retry: { limit: 0 } }))).toEqual({
        kind: 'dependency',
        dependency: `http 127.0.0.1:${httpPort}`,
      });
    });
    it.each([400, 404, 409, 422])('HTTP %i: the record', async (status) => {
      expect(await classOf(() => got.post(`http://127.0.0.1:${httpPort}/${status}`, { retry: { limit: 0 } }))).toEqual({ kind: 'record' });
    });
    it('a timeout: the server', async () => {
      expect(await classOf(() => got.get(`http://127.0.0.1:${httpPort}/slow`, { retry: { limit: 0 }, timeout: { request: 100 } }))).toMatchObject({
        kind: 'dependency',
      });
    });
    it('a header value Node refuses (an order id with CR/LF): the record', async () => {
      expect(await classOf(() => got.post(`http://127.0.0.1:${httpPort}/200`, { retry: { limit: 0 }, headers: { 'idempotency-key': 'o-1\r\nx' } }))).toEqual({
        kind: 'record',
      });
    });
  });

  describe('ioredis', () => {
    it('no server: redis', async () => {
      const redis = new Redis(`redis://127.0.0.1:${closed}`, { maxRetriesPerRequest: 1, retryStrategy: () => 50, lazyConnect: false });
      redis.on('error', () => undefined);
      try {
        expect(await classOf(() => redis.set('k', 'v'))).toEqual({ kind: 'dependency', dependency: 'redis' });
      } finally {
        redis.disconnect();
      }
    });
    it('no connection and no offline queue: redis', async () => {
      const redis = new Redis(`redis://127.0.0.1:${closed}`, { enableOfflineQueue: false, retryStrategy: () => 50 });
      redis.on('error', () => undefined);
      try {
        expect(await classOf(() => redis.get('k'))).toEqual({ kind: 'dependency', dependency: 'redis' });
      } finally {
        redis.disconnect();
      }
    });
    it('a command the data refuses (WRONGTYPE): the record', async () => {
      const redis = new Redis(servers.redisUrl, { maxRetriesPerRequest: 1 });
      const key = uniqueName('classify');
      try {
        await redis.set(key, 'a string');
        expect(await classOf(() => redis.zadd(key, 1, 'member'))).toEqual({ kind: 'record' });
      } finally {
        await redis.del(key);
        redis.disconnect();
      }
    });
  });

  describe('@elastic/elasticsearch', () => {
    it('no server: elasticsearch', async () => {
      const es = new Elasticsearch({ node: `http://127.0.0.1:${closed}`, maxRetries: 0, requestTimeout: 1000 });
      try {
        expect(await classOf(() => es.search({ index: 'x', query: { match_all: {} } }))).toEqual({ kind: 'dependency', dependency: 'elasticsearch' });
      } finally {
        await es.close();
      }
    });
    it('a query the cluster rejects (400) and a missing index (404): the record', async () => {
      const es = new Elasticsearch({ node: servers.elasticsearchUrl, maxRetries: 0 });
      const index = uniqueName('classify').toLowerCase();
      try {
        await es.indices.create({ index, mappings: { properties: { n: { type: 'integer' } } } });
        expect(await classOf(() => es.search({ index, query: { term: { n: 'not a number' } } }))).toEqual({ kind: 'record' });
        expect(await classOf(() => es.search({ index: `${index}-missing`, query: { match_all: {} } }))).toEqual({ kind: 'record' });
      } finally {
        await es.indices.delete({ index }, { ignore: [404] });
        await es.close();
      }
    });
  });

  describe('@influxdata/influxdb-client', () => {
    it('no server: the server', async () => {
      const influx = new InfluxDB({ url: `http://127.0.0.1:${closed}`, token: servers.influxToken, timeout: 1000 });
      expect(await classOf(() => influx.getQueryApi(servers.influxOrg).collectRows('buckets()'))).toMatchObject({ kind: 'dependency' });
    });
    // InfluxDB 1.8 answers a query it cannot run (bad Flux, a year before 1) with 500, as it would an
    // internal failure: the status alone reads as the server's fault. Its ping decides (next test).
    it('a query the server rejects (bad Flux): 500, read as the server until its check says otherwise', async () => {
      const influx = new InfluxDB({ url: servers.influxUrl, token: servers.influxToken, timeout: 5000 });
      expect(await classOf(() => influx.getQueryApi(servers.influxOrg).collectRows('from(bucket: ) |> nonsense('))).toEqual({
        kind: 'dependency',
        dependency: 'influxdb',
      });
    });

    it('an agent whose query InfluxDB refuses with 500 dead-letters that record after its attempts, since the ping passes', async () => {
      const influx = new InfluxDB({ url: servers.influxUrl, token: servers.influxToken, timeout: 5000 });
      const queries = influx.getQueryApi(servers.influxOrg);
      const topic = defineTopic({ name: uniqueName('influx-poison'), key: z.string(), value: z.object({ flux: z.string() }), partitions: 1 });
      const answered: string[] = [];
      const h = await createTestApp({}, (app) => {
        app.dependency('influxdb', async () => (await fetch(`${servers.influxUrl}/ping`)).status === 204);
        app.agent(topic, { ordering: 'partition', retry: { attempts: 3, backoff: { initialMs: 10, maxMs: 50 } } }, async (v, ctx) => {
          await queries.collectRows(v.flux);
          answered.push(ctx.key);
        });
      });
      await h.send(topic, { key: 'good-1', value: { flux: 'buckets() |> limit(n: 1)' } });
      await h.send(topic, { key: 'bad', value: { flux: 'from(bucket: ) |> nonsense(' } });
      await h.send(topic, { key: 'good-2', value: { flux: 'buckets() |> limit(n: 1)' } });
      await h.settle(20_000);
      expect(answered).toEqual(['good-1', 'good-2']);
      expect(h.deadLetters(topic).map((l) => [l.key, l.attempts])).toEqual([['bad', 3]]);
      expect(h.deadLetters(topic)[0]?.errorMessage).toContain('missing property value');
      await h.stop();
    });
  });
});
