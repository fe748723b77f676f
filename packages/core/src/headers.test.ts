import { describe, expect, it } from 'vitest';
import { payment, payments } from '../test/fixtures.js';
import { DEAD_LETTER_HEADERS } from './runtime/dead-letter.js';
import { createTestApp } from './testing/index.js';
import { emptyRawHeaders, type RawHeaders } from './transport/transport.js';

const fastRetry = { attempts: 2, backoff: { initialMs: 1, maxMs: 2, jitter: 0 } };

/** Headers as a hostile producer sends them: a header without a value and names of Object.prototype. */
function hostileHeaders(): RawHeaders {
  const headers = emptyRawHeaders();
  headers['no-value'] = null;
  headers['__proto__'] = Buffer.from('proto');
  headers['constructor'] = Buffer.from('ctor');
  headers['toString'] = Buffer.from('str');
  headers['latin1'] = Buffer.from([0xff, 0xfe, 0x00, 0x80]);
  return headers;
}

describe('hostile headers (#16 findings 1, 2, 5)', () => {
  it('hands a record with a null header value and prototype-named headers to the handler and commits past it', async () => {
    const topic = payments('hostile-headers', 1);
    const seen: Record<string, string>[] = [];
    const h = await createTestApp({}, (app) => app.agent(topic, { retry: fastRetry }, async (_p, ctx) => void seen.push({ ...ctx.headers })));
    await h.sendRaw(topic.name, { key: 'a', value: JSON.stringify(payment(1)), rawHeaders: hostileHeaders() });
    await h.send(topic, { key: 'a', value: payment(2) });
    await h.settle();
    expect(seen).toHaveLength(2);
    expect(Object.getPrototypeOf(seen[0])).toBe(Object.prototype);
    expect(Object.keys(seen[0]!).sort()).toEqual(['__proto__', 'constructor', 'latin1', 'toString']);
    expect(seen[0]!['__proto__']).toBe('proto');
    expect(h.deadLetters(topic)).toEqual([]);
    expect(h.committed(topic).get(0)).toBe(2);
    await h.stop();
  });

  it('dead-letters such a record with its headers byte for byte when the handler rejects it', async () => {
    const topic = payments('hostile-dead', 1);
    const h = await createTestApp({}, (app) =>
      app.agent(topic, { retry: fastRetry }, async () => {
        throw new Error('rejected');
      }),
    );
    await h.sendRaw(topic.name, { key: 'a', value: JSON.stringify(payment(1)), rawHeaders: hostileHeaders() });
    await h.settle();
    const [letter] = h.broker.messages(`${topic.name}.dlq`);
    expect(letter).toBeDefined();
    const headers = letter!.headers;
    expect(Object.getPrototypeOf(headers)).toBeNull();
    expect(headers['no-value']).toBeNull();
    expect(headers['__proto__']).toEqual(Buffer.from('proto'));
    expect(headers['constructor']).toEqual(Buffer.from('ctor'));
    expect(headers['latin1']).toEqual(Buffer.from([0xff, 0xfe, 0x00, 0x80]));
    expect(headers[DEAD_LETTER_HEADERS.errorMessage]?.toString()).toBe('rejected');
    expect(h.committed(topic).get(0)).toBe(1);
    await h.stop();
  });

  it('dead-letters a record over the header limits without calling the handler', async () => {
    const topic = payments('hostile-limits', 1);
    const calls: string[] = [];
    const h = await createTestApp({ headerLimits: { maxHeaders: 100, maxBytes: 4096 } }, (app) =>
      app.agent(topic, { retry: fastRetry }, async (p) => void calls.push(p.id)),
    );
    const many = emptyRawHeaders();
    for (let i = 0; i < 101; i += 1) many[`h${i}`] = Buffer.from('x');
    const big = emptyRawHeaders();
    big['big'] = Buffer.alloc(5000, 1);
    await h.sendRaw(topic.name, { key: 'a', value: JSON.stringify(payment(1)), rawHeaders: many });
    await h.sendRaw(topic.name, { key: 'a', value: JSON.stringify(payment(2)), rawHeaders: big });
    await h.send(topic, { key: 'a', value: payment(3), headers: { ok: 'yes' } });
    await h.settle();
    expect(calls).toEqual(['p-3']);
    const dead = h.deadLetters(topic);
    expect(dead.map((d) => [d.errorClass, d.attempts])).toEqual([
      ['DecodeError', 1],
      ['DecodeError', 1],
    ]);
    expect(dead[0]!.errorMessage).toMatch(/101 headers, over the limit of 100/);
    expect(dead[1]!.errorMessage).toMatch(/over the limit of 4096/);
    expect(h.committed(topic).get(0)).toBe(3);
    await h.stop();
  });
});
