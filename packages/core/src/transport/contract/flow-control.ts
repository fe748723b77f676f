import { describe, expect } from 'vitest';
import { contractTest, record, records, tp } from './contract-context.js';
import type { TransportFactory } from './transport-under-test.js';

/**
 * Pause, resume, partial acceptance and seek: how the runtime applies back pressure (it pauses a
 * partition whose buffer is full, from inside onBatch) and how its exactly-once claim repositions a
 * partition (pause, read the committed offset, seek, resume).
 */
export function describeFlowControl(factory: TransportFactory): void {
  const test = contractTest(factory);

  describe('pause, resume and seek', () => {
    test('delivers no batch of a paused partition while others flow, and resumes it where it stopped', async (c) => {
      const topic = await c.topic('pause', 2);
      const [p0, p1] = [tp(topic, 0), tp(topic, 1)];
      await c.send([record(topic, 'a-0', { partition: 0 }), record(topic, 'a-1', { partition: 0 }), record(topic, 'b-0', { partition: 1 })]);
      // The runtime resumes from inside its own callbacks: a listener call from within pause, resume,
      // seek or commit would re-enter it.
      let inCall: string | undefined;
      const reentered: string[] = [];
      const { consumer, probe } = await c.member(c.name('pause-group'), [topic], {}, ({ probe }) => {
        probe.accept = (batch) => {
          if (inCall !== undefined) reentered.push(`onBatch during ${inCall}`);
          return batch.messages.length;
        };
      });
      const call = <T>(name: string, fn: () => T): T => {
        inCall = name;
        try {
          return fn();
        } finally {
          inCall = undefined;
        }
      };
      await c.until(() => probe.accepted.length >= 3, 'the first three records');

      call('pause', () => consumer.pause([p0]));
      const pausedAt = probe.events.length;
      // Records for both partitions; those of the running partition prove that fetching went on (twice,
      // so that a fetch already in flight when we paused is behind us).
      await c.send([record(topic, 'a-2', { partition: 0 }), record(topic, 'a-3', { partition: 0 }), record(topic, 'b-1', { partition: 1 })]);
      await c.until(() => probe.values(p1).includes('b-1'), 'b-1 on the running partition');
      await c.send([record(topic, 'b-2', { partition: 1 })]);
      await c.until(() => probe.values(p1).includes('b-2'), 'b-2 on the running partition');
      expect(probe.batches(p0, pausedAt)).toEqual([]);

      call('resume', () => consumer.resume([p0]));
      await c.until(() => probe.of(p0).length >= 4, 'the paused partition to deliver again');
      await call('commit', () => consumer.commit([{ ...p0, offset: '4' }]));
      call('seek', () => consumer.seek({ ...p1, offset: '0' }));
      await c.until(() => probe.of(p1).length >= 6, 'the sought partition to deliver again');
      expect(reentered).toEqual([]);
      // Nothing skipped, nothing twice.
      expect(probe.values(p0)).toEqual(['a-0', 'a-1', 'a-2', 'a-3']);
      expect(probe.offsets(p0)).toEqual([0, 1, 2, 3]);
      expect(probe.crashes).toEqual([]);
    });

    test('re-delivers, after resume, exactly the records a batch did not accept', async (c) => {
      const topic = await c.topic('prefix', 1);
      const p0 = tp(topic, 0);
      await c.send(records(topic, 0, 'v', 10));
      // As the runtime does when its buffer fills: accept a prefix and pause from inside onBatch.
      const plan = [3, 0];
      let paused = false;
      const { consumer, probe } = await c.member(c.name('prefix-group'), [topic], {}, ({ consumer, probe }) => {
        probe.accept = (batch) => {
          const take = plan.shift() ?? batch.messages.length;
          if (take >= batch.messages.length) return batch.messages.length;
          consumer.pause([p0]);
          paused = true;
          return take;
        };
      });

      await c.until(() => paused, 'the first batch, 3 of it accepted');
      paused = false;
      consumer.resume([p0]);
      await c.until(() => paused, 'the second batch, none of it accepted');
      paused = false;
      consumer.resume([p0]);
      await c.until(() => probe.accepted.length >= 10, 'the rest');

      const starts = probe.batches().map((b) => b.messages[0]?.offset);
      expect(starts.slice(0, 3)).toEqual(['0', '3', '3']);
      expect(probe.offsets(p0)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(probe.crashes).toEqual([]);
    });

    test('re-delivers the rest of a partly accepted batch also when the listener did not pause', async (c) => {
      const topic = await c.topic('prefix-nopause', 1);
      const p0 = tp(topic, 0);
      await c.send(records(topic, 0, 'v', 10));
      // 3 of 10, then none of the remaining 7, then 2 of them, then the rest.
      const plan = [3, 0, 2];
      const { probe } = await c.member(c.name('prefix-nopause-group'), [topic], {}, ({ probe }) => {
        probe.accept = (batch) => Math.min(plan.shift() ?? batch.messages.length, batch.messages.length);
      });
      await c.until(() => probe.accepted.length >= 10, 'all ten, in pieces');
      const starts = probe.batches().map((b) => b.messages[0]?.offset);
      expect(starts.slice(0, 4)).toEqual(['0', '3', '3', '5']);
      expect(probe.offsets(p0)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    });

    test('after seek, the next batch of the partition starts at the sought offset, forward and back', async (c) => {
      const topic = await c.topic('seek', 1);
      const p0 = tp(topic, 0);
      await c.send(records(topic, 0, 's', 10));
      let take: number | undefined = 0;
      const { consumer, probe } = await c.member(c.name('seek-group'), [topic], {}, ({ consumer, probe }) => {
        probe.accept = (batch) => {
          if (take === undefined) return batch.messages.length;
          consumer.pause([p0]);
          return take;
        };
      });

      // Forward: the first batch (from 0) is declined and the partition paused, as the runtime's claim does.
      await c.until(() => probe.batches().length >= 1, 'the first batch');
      const forwardFrom = probe.events.length;
      consumer.seek({ topic, partition: 0, offset: '7' });
      take = undefined;
      consumer.resume([p0]);
      await c.until(() => probe.accepted.length >= 3, 's-7…s-9');
      // What was fetched from offset 0 before the seek is not delivered again.
      expect(probe.batches(p0, forwardFrom)[0]?.messages[0]?.offset).toBe('7');
      expect(probe.values()).toEqual(['s-7', 's-8', 's-9']);

      // Back: rewinding re-delivers from the sought offset.
      consumer.pause([p0]);
      const backFrom = probe.events.length;
      consumer.seek({ topic, partition: 0, offset: '2' });
      consumer.resume([p0]);
      await c.until(() => probe.accepted.length >= 11, 's-2…s-9 again');
      expect(probe.batches(p0, backFrom)[0]?.messages[0]?.offset).toBe('2');
      expect(probe.values().slice(3)).toEqual(['s-2', 's-3', 's-4', 's-5', 's-6', 's-7', 's-8', 's-9']);

      // A partition this member does not own is ignored, not an error.
      expect(() => consumer.seek({ topic, partition: 7, offset: '0' })).not.toThrow();
      expect(probe.crashes).toEqual([]);
    });
  });
}
