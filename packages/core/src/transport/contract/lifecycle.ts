import { describe, expect } from 'vitest';
import { StreamError } from '../../errors.js';
import { contractTest, record } from './contract-context.js';
import type { TransportFactory } from './transport-under-test.js';

/**
 * A consumer's end: a listener that throws is one crash (not a loop of them, not a silent stop), and once a
 * consumer crashed or stopped, a commit is refused rather than dropped, so the runtime never believes an offset
 * was stored when it was not.
 */
export function describeLifecycle(factory: TransportFactory): void {
  const test = contractTest(factory);

  describe('lifecycle', () => {
    test('a listener that throws is reported as one crash, and a commit after it rejects', async (c) => {
      const topic = await c.topic('crash', 1);
      await c.send([record(topic, 'v')]);
      const { consumer, probe } = await c.member(c.name('crash'), [topic], {}, ({ probe }) => {
        probe.accept = () => {
          throw new Error('listener bug');
        };
      });
      await c.until(() => probe.crashes.length > 0, 'the crash');
      expect(probe.crashes[0]?.message).toContain('listener bug');
      await expect(consumer.commit([{ topic, partition: 0, offset: '1' }])).rejects.toBeInstanceOf(StreamError);
      await consumer.stop();
      expect(probe.crashes).toHaveLength(1);
    });

    test('stop() is idempotent, and a commit after it rejects instead of being dropped', async (c) => {
      const topic = await c.topic('stop', 1);
      const { consumer } = await c.member(c.name('stop'), [topic]);
      await Promise.all([consumer.stop(), consumer.stop()]);
      await consumer.stop();
      await expect(consumer.commit([{ topic, partition: 0, offset: '0' }])).rejects.toBeInstanceOf(StreamError);
    });
  });
}
