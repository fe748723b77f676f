/**
 * Ours, passthrough: decode + validate (zod, through the topic's schema) + send to the output topic.
 *
 * - `agent`: `app.agent(input, { concurrency, ordering: 'key' }, (v, ctx) => ctx.send(output, …))`.
 * - `stream`: `app.stream(input, { prefetch }, …)` with `take(size, { within })`, each batch sent with
 *   `Promise.all` of `output.send(app, …)` (the public way to send from a stream loop).
 * - `defaults`: `app.agent(input, (v, ctx) => ctx.send(output, …))`: no options at all, what a user gets first.
 * - `eos`: the agent with `exactlyOnce: true`; complete when the last transaction (outputs + offsets) committed.
 */
import { defineTopic } from '@stream/core';
import { Enriched, Trade, enrich } from '../data.js';
import { runConsumer } from './harness.js';
import { concurrency } from './instrumentation.js';
import { serviceApp } from './service-app.js';

await runConsumer(
  async (config, recorder) => {
    const exactlyOnce = config.mode === 'eos';
    if (!config.output) throw new Error('passthrough needs an output topic');
    const input = defineTopic({ name: config.input, value: Trade });
    const output = defineTopic({ name: config.output, value: Enriched });

    // Exactly-once: complete when the committed offsets cover every input record (see serviceApp).
    // An agent's sends are acknowledged after its handler returned: complete once every record is processed.
    const app = serviceApp(config, recorder, { outputs: [output], exactlyOnce, acknowledged: config.mode !== 'stream' });

    if (config.mode === 'stream') {
      app.stream(input, { prefetch: concurrency(config.concurrency) }, async (stream) => {
        for await (const batch of stream.take(config.take.size, { within: config.take.withinMs })) {
          recorder.begin();
          await Promise.all(batch.map((trade) => output.send(app, { key: trade.key, value: enrich(trade) })));
          for (const trade of batch) recorder.handled(trade.seq, trade.producedAt);
        }
      });
    } else if (config.mode === 'defaults') {
      app.agent(input, async (trade, ctx) => {
        recorder.begin();
        await ctx.send(output, { key: trade.key, value: enrich(trade) });
        recorder.handled(trade.seq, trade.producedAt);
      });
    } else {
      app.agent(input, { concurrency: concurrency(config.concurrency), ordering: 'key', exactlyOnce }, async (trade, ctx) => {
        recorder.begin();
        await ctx.send(output, { key: trade.key, value: enrich(trade) });
        recorder.handled(trade.seq, trade.producedAt);
      });
    }
    await app.start();
    return async () => {
      await app.stop();
    };
  },
  (config) => (config.mode === 'stream' ? 'all-handled' : 'explicit'),
);
