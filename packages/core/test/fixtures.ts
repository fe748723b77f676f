import { z } from 'zod';
import { defineTopic } from '../src/index.js';

/** Topics the runtime's own tests use. */
export const Payment = z.object({
  id: z.string(),
  account: z.string(),
  amount: z.number().positive(),
  at: z.iso
    .datetime()
    .transform((s) => new Date(s))
    .or(z.date()),
});
export const payments = (name = 'payments', partitions = 3) => defineTopic({ name, key: z.string(), value: Payment, partitions });
export const receipts = (name = 'receipts', partitions = 3) =>
  defineTopic({ name, key: z.string(), value: z.object({ paymentId: z.string(), amount: z.number() }), partitions });

export function payment(i: number, account = `acct-${i % 7}`) {
  return { id: `p-${i}`, account, amount: (i % 100) + 1, at: new Date(1_700_000_000_000 + i).toISOString() };
}

/** Resolves after `ms`. */
export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `condition` until it holds or `timeoutMs` passes. */
export async function eventually(condition: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}
