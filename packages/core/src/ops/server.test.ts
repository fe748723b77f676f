import fc from 'fast-check';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { App } from '../app.js';
import { createLogger } from '../logger.js';
import { MemoryTransport } from '../transport/memory/index.js';
import type { Transport } from '../transport/transport.js';
import { RuntimeMetrics } from './metrics.js';
import { startOpsServer } from './server.js';

/** Whether a TCP connection to host:port is accepted. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The first IPv4 address of this machine that is not loopback, if it has one. */
function externalAddress(): string | undefined {
  for (const addresses of Object.values(networkInterfaces())) for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

/** Sends `raw` on a new connection and resolves with everything the server sent back before closing it. */
function rawRequest(port: number, raw: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? resolve(Buffer.concat(chunks).toString('latin1')) : reject(error)));
    socket.once('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.end(raw);
  });
}

const silent = () => createLogger({ name: 'ops-test', level: 'silent' });

describe('the ops server (#20)', () => {
  it('binds loopback unless told otherwise', async () => {
    const app = new App({ id: 'ops-bind', transport: new MemoryTransport(), logger: silent() });
    const ops = await startOpsServer({ app, metrics: new RuntimeMetrics({ defaultMetrics: false }), port: 0 });
    try {
      expect(await accepts('127.0.0.1', ops.port)).toBe(true);
      const external = externalAddress();
      if (external !== undefined) expect(await accepts(external, ops.port)).toBe(false);
    } finally {
      await ops.close();
    }
  });

  it('says why /healthz fails by the failure’s class, never its text (broker addresses, host names)', async () => {
    const memory = new MemoryTransport();
    const internal = 'connect ECONNREFUSED kafka-7.prod.internal:9093 (broker 10.20.30.40)';
    const failing: Transport = {
      name: 'failing',
      consumer: (options) => memory.consumer(options),
      producer: (options) => memory.producer(options),
      admin: () => ({
        ...memory.admin(),
        connect: () => Promise.reject(new Error(internal)),
      }),
    };
    const app = new App({ id: 'ops-failed', transport: failing, logger: silent() });
    await expect(app.start()).rejects.toThrow(internal);
    expect(app.state).toBe('failed');
    const ops = await startOpsServer({ app, metrics: new RuntimeMetrics({ defaultMetrics: false }), port: 0 });
    try {
      const res = await fetch(`http://127.0.0.1:${ops.port}/healthz`);
      const text = await res.text();
      expect(res.status).toBe(503);
      expect(JSON.parse(text)).toEqual({ status: 'unhealthy', problems: ["app failed (Error): see the service's log"] });
      for (const leak of ['kafka-7', '10.20.30.40', '9093', 'ECONNREFUSED']) expect(text).not.toContain(leak);
    } finally {
      await ops.close();
    }
  });

  it('answers any request line with a status, never a 500 or a dropped connection', async () => {
    const app = new App({ id: 'ops-fuzz', transport: new MemoryTransport(), logger: silent() });
    const ops = await startOpsServer({ app, metrics: new RuntimeMetrics({ defaultMetrics: false }), port: 0 });
    try {
      const target = fc.oneof(
        fc.constantFrom('/healthz', '/readyz', '/metrics', '/livez', '/', '*', '//[', '/%', '/healthz?x=%zz', 'http://a/healthz'),
        fc.string({ unit: 'grapheme', maxLength: 30 }),
      );
      const method = fc.oneof(fc.constantFrom('GET', 'HEAD', 'POST', 'CONNECT', 'OPTIONS', 'get', ''), fc.string({ maxLength: 8 }));
      const line = fc.oneof(
        fc.tuple(method, target, fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2', '')).map(([m, t, v]) => Buffer.from(`${m} ${t} ${v}`, 'utf8')),
        fc.uint8Array({ maxLength: 120 }).map((bytes) => Buffer.from(bytes)),
      );
      const extra = fc.constantFrom('', 'Upgrade: websocket\r\nConnection: Upgrade\r\n', 'Content-Length: x\r\n');
      await fc.assert(
        fc.asyncProperty(line, extra, async (requestLine, header) => {
          const response = await rawRequest(ops.port, Buffer.concat([requestLine, Buffer.from(`\r\nHost: x\r\n${header}Connection: close\r\n\r\n`)]));
          const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(response)?.[1] ?? 0);
          // 503 is /readyz's answer for an app that has not started; nothing else may fail on the server's side.
          expect([200, 400, 404, 405, 408, 431, 503], JSON.stringify(requestLine.toString('latin1'))).toContain(status);
        }),
        { numRuns: 300 },
      );
      expect((await fetch(`http://127.0.0.1:${ops.port}/healthz`)).status).toBe(200);
    } finally {
      await ops.close();
    }
  });
});
