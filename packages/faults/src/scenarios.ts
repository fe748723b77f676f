import { SERVICES, type ServiceName } from './fleet.js';
import type { FaultContext, FaultSpec } from './harness.js';
import { hostileCorpus } from './hostile.js';
import { killDuringRestore } from './restore.js';
import type { StackServer } from './stack.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sizes of a run: the full suite, or the short one CI runs. */
export interface Sizes {
  readonly killRecords: number;
  readonly killsPerService: number;
  /** Slower than `rate`: a SIGKILLed member holds its partitions until its session times out (30 s), so each
   * restart takes that long to be assigned, and every kill must fall within the run. */
  readonly killRate: number;
  readonly records: number;
  readonly rate: number;
  readonly outageMs: number;
  readonly slowMs: number;
  readonly termsPerService: number;
  /** Peak RSS a service process may reach in the hostile-input fault. */
  readonly maxRssMiB: number;
  /** Changelog entries execution-quality's summary table holds when the stateful fault kills it during its restore. */
  readonly restoreEntries: number;
}

export const FULL: Sizes = {
  killRecords: 100_000,
  killsPerService: 5,
  killRate: 400,
  records: 20_000,
  rate: 1000,
  outageMs: 10_000,
  slowMs: 15_000,
  termsPerService: 2,
  maxRssMiB: 768,
  restoreEntries: 200_000,
};
export const QUICK: Sizes = {
  killRecords: 3_000,
  killsPerService: 1,
  killRate: 100,
  records: 2_000,
  rate: 400,
  outageMs: 10_000,
  slowMs: 5_000,
  termsPerService: 1,
  maxRssMiB: 768,
  restoreEntries: 60_000,
};

/** Every how many records the hostile fault puts a corpus entry. */
const HOSTILE_EVERY = 5;

/** Moments (as record counts) spread at random over the middle of a run, in order. */
function moments(ctx: FaultContext, count: number): number[] {
  return Array.from({ length: count }, () => Math.floor(ctx.records * (0.08 + ctx.random() * 0.82))).sort((a, b) => a - b);
}

function shuffled<T>(ctx: FaultContext, list: readonly T[]): T[] {
  const out = [...list];
  for (let i = out.length - 1; i > 0; i -= 1) {
    const j = Math.floor(ctx.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Stops a server of the stack for `ms`, starts it again, and expects the services that use it to resume. */
function outage(slug: string, title: string, server: StackServer, users: readonly ServiceName[], sizes: Sizes): FaultSpec {
  return {
    slug,
    title,
    records: sizes.records,
    rate: sizes.rate,
    async inject(ctx) {
      await ctx.load.whenSent(Math.floor(ctx.records * 0.3));
      const down = Date.now();
      await ctx.stack.down([server]);
      await sleep(sizes.outageMs);
      const restarting = Date.now();
      await ctx.stack.up([server]);
      const up = Date.now();
      ctx.note(`${server} down ${((restarting - down) / 1000).toFixed(1)} s, then ${((up - restarting) / 1000).toFixed(1)} s to start and be healthy again`);
      ctx.expectRecovery(users, up);
    },
  };
}

/** The faults of issue #11, in order. */
export function scenarios(sizes: Sizes): FaultSpec[] {
  return [
    {
      slug: 'kill',
      title: `SIGKILL each service ${sizes.killsPerService}×`,
      records: sizes.killRecords,
      rate: sizes.killRate,
      async inject(ctx) {
        const victims = shuffled(
          ctx,
          SERVICES.flatMap((s) => Array.from({ length: sizes.killsPerService }, () => s)),
        );
        const at = moments(ctx, victims.length);
        // Each service's kills follow one another (a kill waits until the previous restart is ready); different
        // services' kills overlap, as independent crashes would.
        const restarts = new Map<ServiceName, Promise<unknown>>();
        const log: string[] = [];
        await Promise.all(
          victims.map(async (victim, i) => {
            await ctx.load.whenSent(at[i]!);
            const previous = restarts.get(victim) ?? Promise.resolve();
            const turn = previous.then(async () => {
              const killed = Date.now();
              await ctx.fleet.kill(victim);
              log.push(`${victim}@${ctx.load.sent}`);
              // A request the killed process had already sent may still land: the baseline is taken after it.
              await sleep(150);
              const ready = ctx.fleet.start(victim);
              ctx.expectRecovery([victim], killed, ready);
              await ready;
            });
            restarts.set(victim, turn);
            await turn;
          }),
        );
        ctx.note(`kills at records sent: ${log.join(' ')}`);
      },
    },
    {
      slug: 'kafka',
      title: 'Kafka broker stopped and restarted',
      records: sizes.records,
      rate: sizes.rate,
      async inject(ctx) {
        await ctx.load.whenSent(Math.floor(ctx.records * 0.3));
        const down = Date.now();
        await ctx.stack.down(['kafka']);
        await sleep(sizes.outageMs);
        const restarting = Date.now();
        await ctx.stack.up(['kafka']);
        const up = Date.now();
        ctx.note(
          `kafka down ${((restarting - down) / 1000).toFixed(1)} s, then ${((up - restarting) / 1000).toFixed(1)} s to start; producer sends retried ${ctx.load.retries}×`,
        );
        ctx.expectRecovery(SERVICES, up);
      },
    },
    killDuringRestore(sizes),
    outage('redis', `Redis stopped ${sizes.outageMs / 1000} s`, 'redis', ['feed-cache', 'order-emailer'], sizes),
    outage('influx', `InfluxDB stopped ${sizes.outageMs / 1000} s`, 'influxdb', ['execution-quality'], sizes),
    outage('es', `Elasticsearch stopped ${sizes.outageMs / 1000} s`, 'elasticsearch', ['search-enricher'], sizes),
    {
      slug: 'email',
      title: `email API 503 ${sizes.outageMs / 1000} s, then 2 s answers`,
      records: sizes.records,
      rate: sizes.rate,
      async inject(ctx) {
        await ctx.load.whenSent(Math.floor(ctx.records * 0.3));
        ctx.sink.unavailableFor(sizes.outageMs);
        await sleep(sizes.outageMs);
        ctx.sink.latency = 2000;
        ctx.expectRecovery(['order-emailer'], Date.now());
        await sleep(sizes.slowMs);
        ctx.sink.latency = 20;
        ctx.note(`503 for ${sizes.outageMs / 1000} s, then answers after 2 s for ${sizes.slowMs / 1000} s`);
      },
    },
    {
      slug: 'rebalance',
      title: 'instances 2 and 3 join, then leave',
      records: Math.round(sizes.records * 1.5),
      rate: sizes.rate,
      async inject(ctx) {
        await ctx.load.whenSent(Math.floor(ctx.records * 0.25));
        const joined = Date.now();
        await Promise.all(
          SERVICES.map(async (s) => {
            await ctx.fleet.start(s);
            await ctx.fleet.start(s);
          }),
        );
        ctx.expectRecovery(SERVICES, joined);
        ctx.note(`3 instances of each service after ${((Date.now() - joined) / 1000).toFixed(1)} s`);
        await ctx.load.whenSent(Math.floor(ctx.records * 0.6));
        const leaving = Date.now();
        const exits = await Promise.all(
          SERVICES.flatMap((s) => [ctx.fleet.terminate(s, 2), ctx.fleet.terminate(s, 1)].map(async (t) => ({ s, ...(await t) }))),
        );
        for (const e of exits) if (e.code !== 0) ctx.problem(`${e.s} instance leaving exited with ${e.code}`);
        ctx.expectRecovery(SERVICES, leaving);
        ctx.note(
          `8 instances left (SIGTERM) in ${((Date.now() - leaving) / 1000).toFixed(1)} s, exit codes ${[...new Set(exits.map((e) => e.code))].join(',')}`,
        );
      },
    },
    {
      slug: 'fuzz',
      title: 'bad input (fast-check), every 10th record',
      records: sizes.records,
      rate: sizes.rate,
      fuzzEvery: 10,
      async inject(ctx) {
        await ctx.load.whenSent(ctx.records);
        const kinds = new Map<string, { good: number; bad: number }>();
        for (const r of ctx.load.records.values()) {
          if (r.kind === 'plain') continue;
          const k = kinds.get(r.kind) ?? { good: 0, bad: 0 };
          if (r.good) k.good += 1;
          else k.bad += 1;
          kinds.set(r.kind, k);
        }
        ctx.note(`fuzzed (still valid/bad): ${[...kinds].map(([k, v]) => `${k} ${v.good}/${v.bad}`).join(', ')}`);
      },
    },
    {
      slug: 'hostile',
      title: `hostile input (headers, unicode, extremes; kcat + kafkajs), every ${HOSTILE_EVERY}th record`,
      // Long enough for every corpus entry, with plain records after the last one.
      records: Math.max(sizes.records, (hostileCorpus().length + 1) * HOSTILE_EVERY + 200),
      rate: sizes.rate,
      hostileEvery: HOSTILE_EVERY,
      strict: { maxRssMiB: sizes.maxRssMiB },
      async inject(ctx) {
        await ctx.load.whenSent(ctx.records);
      },
    },
    {
      slug: 'sigterm',
      title: `SIGTERM each service ${sizes.termsPerService}× under load`,
      records: sizes.records,
      rate: sizes.rate,
      async inject(ctx) {
        const victims = shuffled(
          ctx,
          SERVICES.flatMap((s) => Array.from({ length: sizes.termsPerService }, () => s)),
        );
        const at = moments(ctx, victims.length);
        const times: string[] = [];
        for (const [i, victim] of victims.entries()) {
          await ctx.load.whenSent(at[i]!);
          const termed = Date.now();
          const { code, ms } = await ctx.fleet.terminate(victim);
          times.push(`${victim} ${(ms / 1000).toFixed(1)} s→${code}`);
          // The shutdown deadline is 30 s; exit 0 within it or the guarantee is broken.
          if (code !== 0 || ms > 31_000) ctx.problem(`${victim} SIGTERM: exit ${code} after ${ms} ms`);
          await sleep(150);
          const ready = ctx.fleet.start(victim);
          ctx.expectRecovery([victim], termed, ready);
          await ready;
        }
        ctx.note(`exits: ${times.join(', ')}`);
      },
    },
  ];
}
