// Prints whether creating an app on the transport named by argv[2] ('kafkajs' or 'platformatic'), and
// building a producer, loaded @platformatic/kafka. No broker is contacted.
import { registerHooks } from 'node:module';

const resolved = new Set();
registerHooks({
  resolve(specifier, context, next) {
    resolved.add(specifier);
    return next(specifier, context);
  },
});
const { createApp, silentLogger } = await import('@stream/core');
const app = createApp({ id: 'lazy-client', brokers: ['127.0.0.1:1'], transport: process.argv[2], logger: silentLogger() });
await app.transport.producer().disconnect();
process.stdout.write(JSON.stringify({ loaded: resolved.has('@platformatic/kafka') }));
