/**
 * Helpers the tables' unit tests share (memory transport). Not exported by the package.
 */
import { expect } from 'vitest';
import type { createApp } from './app.js';
import type { MemoryBroker } from './transport/memory/broker.js';

/** Retries an assertion until it passes or `timeoutMs` passes (then throws its last failure). */
export async function eventually(assertion: () => void, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      assertion();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

let seq = 0;
/** A name no other test of this process uses: topics, groups and app ids. */
export const unique = (name: string): string => `${name}-${process.pid}-${++seq}`;

/** A logger that drops everything, shaped as `createApp` takes it. */
export function silent(): NonNullable<Parameters<typeof createApp>[0]['logger']> {
  const noop = () => {};
  const logger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, fatal: noop, child: () => logger, level: 'silent' };
  return logger as unknown as NonNullable<Parameters<typeof createApp>[0]['logger']>;
}

/** Waits until `group` committed every record of `topic` on the memory broker. */
export async function settled(broker: MemoryBroker, group: string, topic: string): Promise<void> {
  await eventually(() => {
    const committed = new Map(
      broker
        .committed(group)
        .filter((c) => c.topic === topic)
        .map((c) => [c.partition, Number(c.offset)]),
    );
    for (const end of broker.endOffsets(topic)) expect(committed.get(end.partition) ?? 0).toBe(Number(end.offset));
  }, 10_000);
}
