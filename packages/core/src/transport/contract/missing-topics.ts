import { describe, expect } from 'vitest';
import type { ConsumerListener } from '../transport.js';
import { contractTest, record } from './contract-context.js';
import type { TransportFactory } from './transport-under-test.js';

/** What a missing topic looks like: the app's start-up check and its operators rely on the code and the name. */
const missing = (topic: string) => ({ code: 'TOPIC_MISSING', message: expect.stringContaining(topic) as unknown });

/**
 * Topics are never created on use (auto-create is off on our brokers): every operation on a topic that
 * does not exist fails fast with TOPIC_MISSING naming it, instead of waiting for metadata.
 */
export function describeMissingTopics(factory: TransportFactory): void {
  const test = contractTest(factory);

  describe('missing topics', () => {
    test('consumer start, send, transactional send and admin reads reject a missing topic with TOPIC_MISSING', async (c) => {
      const present = await c.topic('present', 1);
      const absent = c.name('absent-topic');

      const consumer = c.under.transport.consumer(c.options(c.name('absent-group'), [present, absent]));
      const started = Date.now();
      await expect(consumer.start(new NeverListener())).rejects.toMatchObject(missing(absent));
      expect(Date.now() - started).toBeLessThan(5_000);
      await consumer.stop();

      await expect(c.send([record(absent, 'v')])).rejects.toMatchObject(missing(absent));
      const producer = await c.producer(c.name('absent-tx'));
      const tx = await producer.transaction();
      await expect(tx.send([record(absent, 'v')])).rejects.toMatchObject(missing(absent));
      await tx.abort();

      const admin = await c.admin();
      await expect(admin.endOffsets(absent)).rejects.toMatchObject(missing(absent));
      await expect(admin.committedOffsets(c.name('absent-group'), absent)).rejects.toMatchObject(missing(absent));
      expect(await admin.listTopics()).toContain(present);
      expect(await admin.listTopics()).not.toContain(absent);
    });
  });
}

/** A listener for a consumer that must never get as far as hearing anything. */
class NeverListener implements ConsumerListener {
  onAssignment(): void {
    throw new Error('onAssignment on a consumer that should not have started');
  }
  onBatch(): number {
    throw new Error('onBatch on a consumer that should not have started');
  }
  onRevoking(): void {}
  onCrash(): void {}
}
