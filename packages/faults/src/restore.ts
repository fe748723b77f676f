import { slippageBySymbol } from '@stream/contracts';
import type { RunningService } from '@stream/local-stack';
import type { FaultContext, FaultSpec } from './harness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Symbols of the samples the fault adds to execution-quality's summary table (never traded by the load). */
const SYMBOLS = 200;

/** What the summary table must hold for one symbol: the sum over its windows. */
interface Expected {
  count: number;
  sumBps: number;
}

/**
 * Adds `entries` slippage samples for {@link SYMBOLS} synthetic symbols straight to the summary's input topic
 * (each sample one changelog entry of execution-quality's `slippage` table), spread over the market data's
 * execution times so that none is late and no window closes (the fault suite runs the summary with an hour of
 * grace). Returns what each symbol's windows must add up to.
 */
async function addState(ctx: FaultContext, entries: number): Promise<Map<string, Expected>> {
  const expected = new Map<string, Expected>();
  const start = ctx.market.start.getTime() + 60_000;
  const span = ctx.market.end.getTime() - start;
  const messages = Array.from({ length: entries }, (_, n) => {
    const symbol = `RST${String(n % SYMBOLS).padStart(3, '0')}`;
    const slippageBps = Math.round((ctx.random() * 60 - 25) * 100) / 100;
    const e = expected.get(symbol) ?? { count: 0, sumBps: 0 };
    expected.set(symbol, { count: e.count + 1, sumBps: e.sumBps + slippageBps });
    const executedAt = new Date(start + Math.floor(ctx.random() * span)).toISOString();
    return { key: symbol, value: JSON.stringify({ orderId: `restore-${n}`, symbol, executedAt, slippageBps }) };
  });
  for (let i = 0; i < messages.length; i += 5000) {
    await ctx.producer.send({ topic: slippageBySymbol.name, messages: messages.slice(i, i + 5000) });
  }
  return expected;
}

/** Symbols whose windows (`GET /tables/slippage/<symbol>` on the instance) do not add up to what was sent. */
async function mismatches(instance: RunningService, expected: ReadonlyMap<string, Expected>): Promise<string[]> {
  const wrong: string[] = [];
  for (const [symbol, want] of expected) {
    const res = await fetch(`http://127.0.0.1:${instance.opsPort}/tables/slippage/${symbol}`, { signal: AbortSignal.timeout(5000) });
    if (res.status !== 200) {
      wrong.push(`${symbol}: ${res.status}`);
      continue;
    }
    const body = (await res.json()) as { value: { windows: { value: { count: number; sumBps: number } }[] } };
    const count = body.value.windows.reduce((n, w) => n + w.value.count, 0);
    const sum = body.value.windows.reduce((n, w) => n + w.value.sumBps, 0);
    if (count !== want.count || Math.abs(sum - want.sumBps) > 1e-6 * Math.max(1, Math.abs(want.sumBps))) {
      wrong.push(`${symbol}: ${count} samples, ${sum.toFixed(2)} bps (sent ${want.count}, ${want.sumBps.toFixed(2)} bps)`);
    }
  }
  return wrong;
}

/** Waits until the table adds up, or `timeoutMs` passed: what is still wrong. */
async function settled(instance: RunningService, expected: ReadonlyMap<string, Expected>, timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const wrong = await mismatches(instance, expected).catch((error: unknown) => [String(error)]);
    if (wrong.length === 0 || Date.now() > deadline) return wrong;
    await sleep(500);
  }
}

/** The largest `stream_table_restore_lag` an instance's /metrics shows (0 when it is not restoring or not up). */
async function restoreLag(instance: RunningService): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${instance.opsPort}/metrics`, { signal: AbortSignal.timeout(1000) })).text();
    return Math.max(0, ...[...text.matchAll(/^stream_table_restore_lag\{[^}]*\} (\S+)$/gm)].map((m) => Number(m[1])));
  } catch {
    return 0;
  }
}

/**
 * The stateful fault: execution-quality's summary table is given `entries` changelog entries, then the
 * service is SIGKILLed, restarted, and SIGKILLed again while the new instance restores the table from its
 * changelog; a third instance restores it and must hold exactly what was sent (each symbol's windows add up to
 * its samples: nothing lost, nothing applied twice), while the orders flowing meanwhile are each reported once.
 */
export function killDuringRestore(sizes: { readonly records: number; readonly rate: number; readonly restoreEntries: number }): FaultSpec {
  return {
    slug: 'restore',
    title: `SIGKILL execution-quality while it restores its summary table (${sizes.restoreEntries.toLocaleString('en-US')} changelog entries)`,
    records: sizes.records,
    rate: sizes.rate,
    // execution-quality keeps its summary table only on a client that can restore it from its changelog.
    needs: 'readPartition',
    async inject(ctx) {
      await ctx.load.whenSent(Math.floor(ctx.records * 0.1));
      const expected = await addState(ctx, sizes.restoreEntries);
      const first = ctx.fleet.instances('execution-quality')[0]!;
      const before = await settled(first, expected, 120_000);
      if (before.length > 0) ctx.problem(`summary table before the kills: ${before.length} symbols wrong, e.g. ${before.slice(0, 3).join('; ')}`);

      const killed = Date.now();
      await ctx.fleet.kill('execution-quality');
      await sleep(150);
      // Not awaited: the instance must die while it restores, before it is ready.
      const restarting = ctx.fleet.start('execution-quality').catch(() => undefined);
      const instance = ctx.fleet.instances('execution-quality').at(-1)!;
      let lag = 0;
      // A SIGKILLed member holds its partitions until its session times out: the restore starts up to 45 s later.
      const deadline = Date.now() + 90_000;
      while ((lag = await restoreLag(instance)) === 0 && Date.now() < deadline) await sleep(20);
      if (lag === 0) {
        ctx.problem('the second instance was never seen restoring its summary table: the kill missed the restore');
      } else {
        await ctx.fleet.kill('execution-quality', ctx.fleet.instances('execution-quality').indexOf(instance));
        ctx.note(`second instance SIGKILLed while restoring, ${lag.toLocaleString('en-US')} entries of a partition still to read`);
      }
      await restarting;
      await sleep(150);
      const ready = ctx.fleet.start('execution-quality');
      ctx.expectRecovery(['execution-quality'], killed, ready);
      const third = await ready;
      const after = await settled(third, expected, 120_000);
      if (after.length > 0) ctx.problem(`summary table after the restores: ${after.length} symbols wrong, e.g. ${after.slice(0, 3).join('; ')}`);
      else ctx.note(`the third instance restored all ${SYMBOLS} symbols' windows exactly (${sizes.restoreEntries.toLocaleString('en-US')} samples)`);
    },
  };
}
