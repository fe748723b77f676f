import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { StreamError } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { defineTopic } from '../topic.js';
import type { OutgoingMessage, RawMessage } from '../transport/transport.js';
import { childTraceparent, RecordContext, type ImmediateSend } from './handler-context.js';
import { PartitionState, type Delivery } from './partition.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;
const receipts = defineTopic({ name: 'receipts', key: z.string(), value: z.object({ id: z.string() }) });

function delivery(): Delivery {
  const message: RawMessage = { key: Buffer.from('k1'), value: Buffer.from('{}'), headers: {}, offset: '12', timestamp: '1700000000123' };
  return new PartitionState('orders', 4, 1).accept(message, 12);
}

/** A context whose sends are either captured (exactly-once, `immediate` false) or produced at once. */
function context(options: { headers?: Record<string, string>; immediate?: boolean; signal?: AbortSignal; log?: Logger } = {}) {
  const outputs: OutgoingMessage[] = [];
  const produced: OutgoingMessage[] = [];
  const host: ImmediateSend = { produce: async (messages) => void produced.push(...messages) };
  const decoded = { key: 'k1', value: {}, headers: options.headers ?? {} };
  const log = options.log ?? silentLogger();
  const ctx = new RecordContext(delivery(), decoded, 2, options.signal ?? new AbortController().signal, log, outputs, options.immediate ? host : null);
  return { ctx, outputs, produced };
}

const traceparentOf = (message: OutgoingMessage | undefined) => message?.headers?.traceparent?.toString('utf8');

describe('childTraceparent', () => {
  it('keeps the trace id and flags and starts a new parent span', () => {
    const child = childTraceparent({ traceparent: PARENT });
    expect(child).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`));
    expect(child).not.toBe(PARENT);
    expect(childTraceparent({ traceparent: PARENT })).not.toBe(child);
  });

  it('continues nothing when the record has no traceparent or a malformed one', () => {
    expect(childTraceparent({})).toBeUndefined();
    expect(childTraceparent({ traceparent: 'garbage' })).toBeUndefined();
    expect(childTraceparent({ traceparent: `01-${TRACE_ID}-00f067aa0ba902b7-01` })).toBeUndefined();
  });
});

describe('RecordContext', () => {
  it('describes the record: topic, partition, offset, key, headers, timestamp and attempt', () => {
    const { ctx } = context({ headers: { tenant: 'eu' } });
    expect(ctx.topic).toBe('orders');
    expect(ctx.partition).toBe(4);
    expect(ctx.offset).toBe('12');
    expect(ctx.key).toBe('k1');
    expect(ctx.headers).toEqual({ tenant: 'eu' });
    expect(ctx.timestamp).toEqual(new Date(1_700_000_000_123));
    expect(ctx.attempt).toBe(2);
  });

  it('builds its logger only when the handler uses it', () => {
    const base = silentLogger();
    const child = vi.spyOn(base, 'child');
    const { ctx } = context({ log: base });
    expect(child).not.toHaveBeenCalled();
    void ctx.log;
    void ctx.log;
    expect(child).toHaveBeenCalledTimes(1);
    expect(child).toHaveBeenCalledWith({ partition: 4, offset: '12' });
  });

  it('under exactly-once captures what the handler sends, continuing the consumed trace', async () => {
    const { ctx, outputs, produced } = context({ headers: { traceparent: PARENT } });
    await ctx.send(receipts, { key: 'k1', value: { id: 'r1' } });
    expect(produced).toEqual([]);
    expect(outputs.map((m) => m.topic)).toEqual(['receipts']);
    expect(traceparentOf(outputs[0])).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`));
    expect(traceparentOf(outputs[0])).not.toBe(PARENT);
  });

  it('at-least-once produces at once, and keeps a traceparent the handler set itself', async () => {
    const own = `00-${'a'.repeat(32)}-${'b'.repeat(16)}-00`;
    const { ctx, outputs, produced } = context({ headers: { traceparent: PARENT }, immediate: true });
    await ctx.send(receipts, { key: 'k1', value: { id: 'r1' }, headers: { traceparent: own } });
    expect(outputs).toEqual([]);
    expect(produced).toHaveLength(1);
    expect(traceparentOf(produced[0])).toBe(own);
  });

  it('adds no traceparent when the consumed record had none', async () => {
    const { ctx, outputs } = context();
    await ctx.send(receipts, { key: 'k1', value: { id: 'r1' } });
    expect(traceparentOf(outputs[0])).toBeUndefined();
  });

  it('rejects a send after the record was aborted, and one that fails its schema, capturing nothing', async () => {
    const abort = new AbortController();
    const { ctx, outputs } = context({ signal: abort.signal });
    // @ts-expect-error: the value misses its id on purpose
    await expect(ctx.send(receipts, { key: 'k1', value: {} })).rejects.toThrow(/receipts/);
    abort.abort(new Error('revoked'));
    const rejected = ctx.send(receipts, { key: 'k1', value: { id: 'r1' } });
    await expect(rejected).rejects.toBeInstanceOf(StreamError);
    await expect(rejected).rejects.toMatchObject({ code: 'ABORTED' });
    expect(outputs).toEqual([]);
  });
});
