import { createTopicsCommand } from '@stream/cli';
import { allTopics, executionQuality, executionQualitySummary, topResults, type ExecutionQuality, type ExecutionQualitySummary } from '@stream/contracts';
import { bytesCodec, changelogTopicName, createApp, deadLetterTopicName, defineTopic, KafkaTransport, silentLogger, toError, type App } from '@stream/core';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { deleteTopics, EmailSink, runScript, startService, stopService, waitReady, type RunningService } from '@stream/local-stack';
import { marketWindow } from './market.js';
import { DemoProducer, SYMBOLS } from './producer.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '60' },
    rate: { type: 'string', default: '200' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  process.stdout.write(`usage: pnpm demo [--duration SECONDS] [--rate RECORDS_PER_SECOND] [--keep]
Runs the four services on the local stack, streams activities, orders and search queries through them for
--duration seconds (default 60), prints a summary, then stops everything (--keep leaves it all running).
`);
  process.exit(0);
}
const durationMs = Number(args.duration) * 1000;
const rate = Number(args.rate);
const env = {
  KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
  REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  INFLUX_URL: process.env.INFLUX_URL ?? 'http://127.0.0.1:8086',
  INFLUX_TOKEN: process.env.INFLUX_TOKEN ?? 'demo:demo',
  INFLUX_ORG: process.env.INFLUX_ORG ?? 'stream',
  INFLUX_BUCKET: process.env.INFLUX_BUCKET ?? 'stream/autogen',
  ELASTICSEARCH_URL: process.env.ELASTICSEARCH_URL ?? 'http://127.0.0.1:9200',
};
const SEARCH_INDEX = 'demo-products';
const EMAIL_TOKEN = 'demo-email-token';
const out = (line: string) => process.stdout.write(`${line}\n`);
const step = (line: string) => out(`\n▶ ${line}`);

const runTool = (script: string, toolArgs: string[]) => runScript(repo, script, toolArgs, env);

function progress(done: number, total: number, counts: string): void {
  const width = 30;
  const filled = Math.round((done / total) * width);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.round((done / total) * 100)}% ${counts}`;
  if (process.stdout.isTTY) process.stdout.write(`\r${bar}`);
  else if (Math.round((done / total) * 100) % 20 === 0) out(bar);
}

interface Observed {
  reports: ExecutionQuality[];
  summaries: ExecutionQualitySummary[];
  resultIds: Set<string>;
  results: number;
  hits: number;
  samples: { query: string; top: string | null }[];
  deadLetters: { topic: string; app: string; reason: string }[];
}

/** A read-only app that watches the services' outputs and dead letters for the summary. */
function observer(): { app: App; seen: Observed } {
  const seen: Observed = { reports: [], summaries: [], resultIds: new Set(), results: 0, hits: 0, samples: [], deadLetters: [] };
  const app = createApp({ id: `demo-observer-${Date.now().toString(36)}`, brokers: env.KAFKA_BROKERS.split(','), logger: silentLogger(), startFrom: 'latest' });
  app.agent(executionQuality, { deadLetter: false }, async (report) => void seen.reports.push(report));
  app.agent(executionQualitySummary, { deadLetter: false }, async (summary) => void seen.summaries.push(summary));
  app.agent(topResults, { deadLetter: false }, async (result) => {
    seen.results += 1;
    seen.resultIds.add(result.id);
    if (result.topResult) seen.hits += 1;
    const wanted = result.topResult ? seen.samples.filter((x) => x.top).length < 2 : seen.samples.filter((x) => !x.top).length < 1;
    if (wanted) seen.samples.push({ query: result.queryString, top: result.topResult ? JSON.stringify(result.topResult.source).slice(0, 80) : null });
  });
  const anyBytes = { '~standard': { version: 1 as const, vendor: 'demo', validate: (value: unknown) => ({ value }) } };
  for (const source of ['feed_activities', 'orders', 'search_queries', 'execution_quality_by_symbol']) {
    const dlq = defineTopic({ name: deadLetterTopicName(source), value: anyBytes, codec: bytesCodec });
    app.agent(dlq, { deadLetter: false, name: `watch-${source}-dlq` }, async (_value, ctx) => {
      seen.deadLetters.push({ topic: source, app: ctx.headers['dlq.app.id'] ?? '?', reason: ctx.headers['dlq.error.message'] ?? 'unknown' });
    });
  }
  return { app, seen };
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<number> {
  const transport = new KafkaTransport({ brokers: env.KAFKA_BROKERS.split(','), clientId: 'demo', logger: silentLogger() });
  step('creating topics from @stream/contracts');
  await createTopicsCommand(transport, allTopics, (l) => out(`  ${l}`));
  // Each run replays the last hour of market time, which an earlier run's summary table has already passed
  // (its restored stream time would make every order late): the table starts afresh.
  await deleteTopics([changelogTopicName('execution-quality', 'slippage')]);

  // The same deterministic series the seeding tool writes, kept here so orders are priced near the market.
  const market = marketWindow();
  const marketStart = market.start;
  const marketEnd = market.end;
  const priceAt = (symbol: string, at: Date) => market.priceAt(symbol, at);
  step(`loading market data for ${SYMBOLS.join(', ')} (last hour, one tick per second)`);
  await runTool('services/execution-quality/dist/seed-market-data.js', [
    '--symbols',
    SYMBOLS.join(','),
    '--points',
    '3600',
    '--start',
    marketStart.toISOString(),
    '--step-ms',
    '1000',
  ]);
  step(`loading the search corpus into ${SEARCH_INDEX}`);
  await runTool('services/search-enricher/dist/load-corpus.js', ['--index', SEARCH_INDEX, '--docs', '2000', '--recreate']);

  const sink = new EmailSink({ token: EMAIL_TOKEN, latencyMs: 20 });
  const sinkPort = await sink.listen(0);
  const logDir = path.join(process.env.STREAM_STACK_DATA ?? path.join(tmpdir(), 'stream-stack'), 'logs', 'demo');
  step(`starting the services (logs in ${logDir})`);
  const services: RunningService[] = [
    startService(repo, 'feed-cache', { ...env, HTTP_PORT: '18080', OPS_PORT: '19464', FEED_MAX_ITEMS: '100' }, logDir),
    startService(repo, 'order-emailer', { ...env, EMAILER_URL: `http://127.0.0.1:${sinkPort}/`, EMAILER_TOKEN: EMAIL_TOKEN, OPS_PORT: '19465' }, logDir),
    // The orders replay market time 20 times faster than real time (REPLAY_SPEED), so a second's skew between
    // the orders' partitions is 20 s of execution time: the summary's grace covers a few seconds of it.
    startService(repo, 'execution-quality', { ...env, MARKET_LOOKBACK: '5m', SUMMARY_GRACE: '2m', OPS_PORT: '19466' }, logDir),
    startService(repo, 'search-enricher', { ...env, SEARCH_INDEX, SEARCH_FIELDS: 'title^2,body', OPS_PORT: '19467' }, logDir),
  ];
  const stopAll = async () => {
    const codes = await Promise.all(services.map(async (s) => [s.name, await stopService(s)] as const));
    await sink.close();
    return codes;
  };
  let interrupted = false;
  process.once('SIGINT', () => {
    interrupted = true;
    out('\nstopping (Ctrl-C)…');
  });
  try {
    await Promise.all(services.map((s) => waitReady(s)));
    for (const s of services) out(`  ${s.name} ready — http://127.0.0.1:${s.opsPort}/metrics`);

    const watch = observer();
    await watch.app.start();
    const producerApp = createApp({ id: 'demo-producer', brokers: env.KAFKA_BROKERS.split(','), logger: silentLogger() });
    const rawProducer = transport.producer();
    await rawProducer.connect();
    const producer = new DemoProducer(producerApp, {
      seed: 42,
      marketStart,
      marketEnd,
      durationMs,
      priceAt,
      queries: ['wireless headphones', 'red leather wallet', 'waterproof tent', 'quiet blender', 'oak desk', '*:*', 'title:x OR 1=1', 'garden hose'],
    });
    step(`producing for ${durationMs / 1000} s at about ${rate} activities/s`);
    const started = Date.now();
    const tickMs = 100;
    while (!interrupted && Date.now() - started < durationMs) {
      const tickStart = Date.now();
      await producer.tick(Math.max(1, Math.round((rate * tickMs) / 1000)), (topic, key, value) =>
        rawProducer.send([{ topic, key: Buffer.from(key), value: Buffer.from(value), headers: {} }]),
      );
      const c = producer.counts;
      progress(Math.min(durationMs, Date.now() - started), durationMs, `activities ${c.activities} orders ${c.orders} queries ${c.queries}`);
      await new Promise((r) => setTimeout(r, Math.max(0, tickMs - (Date.now() - tickStart))));
    }
    await rawProducer.disconnect();
    await producerApp.stop();
    out('');

    step('waiting for the services to catch up');
    const c = producer.counts;
    const reported = () => new Set(watch.seen.reports.map((r) => r.orderId).filter((id) => producer.orderIds.has(id))).size;
    const enriched = () => [...producer.queryIds].filter((id) => watch.seen.resultIds.has(id)).length;
    const drainDeadline = Date.now() + 60_000;
    while (!interrupted && Date.now() < drainDeadline) {
      if (reported() >= c.orders && enriched() >= c.queries && sink.emailed(producer.orderIds) >= c.orders) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    await watch.app.stop();

    step('summary');
    out(
      `  produced: ${c.activities} activities, ${c.orders} orders (+${c.duplicateOrders} redelivered on purpose), ${c.queries} search queries, ${c.malformedOrders + c.malformedActivities} malformed records`,
    );
    const feed = (await (await fetch('http://127.0.0.1:18080/feed/user-1?limit=3')).json()) as { items: { message: string; timestamp: string }[] };
    out(`  feed-cache: GET /feed/user-1?limit=3 →`);
    for (const item of feed.items) out(`      ${item.timestamp}  ${item.message}`);
    const s = sink.stats();
    out(
      `  order-emailer: ${sink.emailed(producer.orderIds)} emails for ${c.orders} orders; ${c.duplicateOrders} redelivered orders sent no second email; requests ${s.requests}, repeated idempotency keys ${s.repeatedKeys}`,
    );
    out(`  execution-quality: ${watch.seen.reports.length} reports`);
    for (const symbol of SYMBOLS) {
      const bps = watch.seen.reports
        .filter((r) => r.symbol === symbol && r.slippageBps !== null)
        .map((r) => r.slippageBps!)
        .sort((a, b) => a - b);
      const none = watch.seen.reports.filter((r) => r.symbol === symbol && r.status === 'no_market_data').length;
      out(
        `      ${symbol.padEnd(9)} n=${String(bps.length).padStart(5)}  slippage bps p10 ${percentile(bps, 10).toFixed(1).padStart(7)}  p50 ${percentile(bps, 50).toFixed(1).padStart(7)}  p90 ${percentile(bps, 90).toFixed(1).padStart(7)}${none ? `  no market data: ${none}` : ''}`,
      );
    }
    const summaries = watch.seen.summaries;
    out(`  execution-quality summary: ${summaries.length} one-minute windows closed (execution_quality_summary); the last of each symbol:`);
    for (const symbol of SYMBOLS) {
      const last = summaries.filter((x) => x.symbol === symbol).at(-1);
      if (!last) continue;
      const hhmm = (d: Date) => d.toISOString().slice(11, 16);
      out(
        `      ${symbol.padEnd(9)} ${hhmm(last.windowStart)}–${hhmm(last.windowEnd)}  n=${String(last.count).padStart(3)}  mean ${last.meanBps.toFixed(1).padStart(6)} bps  worst ${last.worstBps.toFixed(1).padStart(6)} bps`,
      );
    }
    // The window still open, from the table itself: the instance that holds ACME's partition answers.
    const query = await fetch('http://127.0.0.1:19466/tables/slippage/ACME').catch((error: unknown) => toError(error));
    let tableProblem: string | undefined;
    if (query instanceof Error || !query.ok) {
      tableProblem = `GET /tables/slippage/ACME on execution-quality answered ${query instanceof Error ? query.message : query.status}`;
    } else {
      const open = (await query.json()) as {
        value: { streamTime: string; windows: { start: string; end: string; value: { count: number; sumBps: number; worstBps: number } }[] };
      };
      out(`  execution-quality: GET /tables/slippage/ACME → stream time ${open.value.streamTime.slice(11, 19)}, open windows:`);
      for (const w of open.value.windows) {
        out(
          `      ${w.start.slice(11, 16)}–${w.end.slice(11, 16)}  n=${String(w.value.count).padStart(3)}  mean ${(w.value.sumBps / w.value.count).toFixed(1).padStart(6)} bps  worst ${w.value.worstBps.toFixed(1).padStart(6)} bps`,
        );
      }
    }
    out(`  search-enricher: ${watch.seen.results} enriched queries, ${watch.seen.hits} with a top hit`);
    for (const sample of watch.seen.samples) out(`      "${sample.query}" → ${sample.top ?? 'no hit'}`);
    const reasons = new Map<string, number>();
    for (const d of watch.seen.deadLetters) {
      // Times differ from letter to letter: grouped without them.
      const line = `${d.app}: ${d.reason.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, '…').slice(0, 110)}`;
      reasons.set(line, (reasons.get(line) ?? 0) + 1);
    }
    out(`  dead letters: ${watch.seen.deadLetters.length}`);
    for (const [reason, n] of reasons) out(`      ${n} × ${reason}`);
    out(`  metrics: ${services.map((sv) => `http://127.0.0.1:${sv.opsPort}/metrics`).join('  ')}`);

    const problems: string[] = [];
    if (tableProblem) problems.push(tableProblem);
    const emailed = sink.emailed(producer.orderIds);
    if (emailed !== c.orders) problems.push(`${c.orders - emailed} of this run's ${c.orders} orders got no email`);
    if (s.repeatedKeys > 0 || s.unauthorized > 0) problems.push(`email sink saw ${s.repeatedKeys} repeated keys and ${s.unauthorized} unauthorized requests`);
    if (reported() < c.orders) problems.push(`${c.orders - reported()} orders without an execution report`);
    if (enriched() < c.queries) problems.push(`${c.queries - enriched()} queries without a result`);
    if (summaries.length === 0) problems.push('no execution-quality summary window closed');
    // A malformed order is dead-lettered by each of the two services that consume orders.
    const expectedDead = c.malformedOrders * 2 + c.malformedActivities;
    if (watch.seen.deadLetters.length < expectedDead) problems.push(`${expectedDead - watch.seen.deadLetters.length} malformed records not dead-lettered`);
    for (const p of problems) out(`  ✗ ${p}`);

    if (args.keep && !interrupted) {
      out('\n--keep: services keep running; Ctrl-C stops them.');
      await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
    }
    step('stopping the services');
    const codes = await stopAll();
    for (const [name, code] of codes) out(`  ${name} exited with ${code}`);
    return problems.length > 0 || codes.some(([, code]) => code !== 0) ? 1 : 0;
  } catch (error) {
    await stopAll();
    throw error;
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`demo: ${toError(error).message}\n`);
    process.exit(1);
  },
);
