import { localServers, requireServers } from '@stream/local-stack';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InfluxPriceSource, MarketDataTimeoutError, influxPing } from './price-source.js';

const T = 1_767_225_600_000_000_000n;

describe('InfluxPriceSource against a server that never answers', () => {
  let server: Server;
  let url: string;
  const requests: IncomingMessage[] = [];
  const closed: IncomingMessage[] = [];

  beforeAll(async () => {
    server = createServer((req) => {
      requests.push(req);
      req.socket.once('close', () => closed.push(req));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const source = (timeoutMs: number) => new InfluxPriceSource({ url, token: 'u:p', org: 'o', bucket: 'db/autogen', lookbackMs: 60_000, timeoutMs });

  it('gives up after the timeout and closes the connection', async () => {
    const before = requests.length;
    const started = Date.now();
    await expect(source(300).last('ACME', T)).rejects.toBeInstanceOf(MarketDataTimeoutError);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(requests.length).toBe(before + 1);
    const req = requests.at(-1)!;
    expect(req.url).toBe('/api/v2/query?org=o');
    expect(req.headers.authorization).toBe('Token u:p');
    await waitFor(() => closed.includes(req));
  });

  it('stops at once when the caller aborts, with the caller’s reason', async () => {
    const controller = new AbortController();
    const pending = source(30_000).window('ACME', T, T + 1_000_000n, controller.signal);
    await waitFor(() => requests.length > 0 && !closed.includes(requests.at(-1)!));
    const req = requests.at(-1)!;
    controller.abort(new Error('partition revoked'));
    await expect(pending).rejects.toThrow('partition revoked');
    await waitFor(() => closed.includes(req));
  });

  it('sends nothing for an already aborted signal', async () => {
    const before = requests.length;
    await expect(source(30_000).last('ACME', T, AbortSignal.abort(new Error('gone')))).rejects.toThrow('gone');
    expect(requests.length).toBe(before);
  });

  it('reports not ready', async () => {
    expect(await influxPing(url, 200)).toBe(false);
    expect(await influxPing('http://127.0.0.1:1')).toBe(false);
  });
});

describe('InfluxPriceSource against the real InfluxDB', () => {
  beforeAll(() => requireServers('influxdb'));
  const { influxUrl, influxToken, influxOrg } = localServers();

  it('is ready', async () => {
    expect(await influxPing(influxUrl)).toBe(true);
  });

  it('surfaces a server error (missing database) as a rejection the agent retries', async () => {
    const source = new InfluxPriceSource({
      url: influxUrl,
      token: influxToken,
      org: influxOrg,
      bucket: 'no_such_database_eq/autogen',
      lookbackMs: 60_000,
      timeoutMs: 5000,
    });
    await expect(source.last('ACME', T)).rejects.toThrow(/database/);
  });
});

/** Polls `condition` every 10 ms for at most 5 s. */
async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met within 5 s');
    await new Promise((r) => setTimeout(r, 10));
  }
}
