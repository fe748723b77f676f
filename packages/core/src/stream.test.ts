import { describe, expect, it } from 'vitest';
import type { AgentContext } from './agent.js';
import { silentLogger } from './logger.js';
import { createStreamAgent } from './stream.js';

/** A context that is not the runtime's (a test's own): the stream falls back to a promise per record. */
const ctx = (offset: number, signal: AbortSignal) =>
  ({ topic: 't', partition: 0, offset: String(offset), key: null, headers: {}, timestamp: new Date(0), signal }) as unknown as AgentContext<unknown>;

describe('stream agents on a context of their own', () => {
  it('settles a record once the loop asks for the next, and rejects one the loop holds when its signal aborts', async () => {
    const stopping = new AbortController();
    const seen: unknown[] = [];
    let release!: () => void;
    const handler = createStreamAgent(
      async (stream) => {
        for await (const value of stream) {
          seen.push(value);
          // The loop works on the value until the test lets it go.
          await new Promise<void>((resolve) => (release = resolve));
        }
      },
      stopping.signal,
      silentLogger(),
    );
    const partition = new AbortController();
    let firstDone = false;
    const first = handler(1, ctx(0, partition.signal)).then(() => (firstDone = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual([1]);
    expect(firstDone).toBe(false);
    release();
    await first;
    const second = handler(2, ctx(1, partition.signal));
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual([1, 2]);
    // The loop still holds the second: the revoke rejects it (and a later release changes nothing).
    partition.abort(new Error('revoked'));
    await expect(second).rejects.toThrow('revoked');
    release();
    await expect(handler(3, ctx(2, partition.signal))).rejects.toThrow('revoked');
    stopping.abort();
  });
});
