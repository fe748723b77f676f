/**
 * @platformatic/kafka, loaded on first use. Importing it costs about 60 MB of resident memory (its
 * schema-registry codecs come with it), which every app on the default kafkajs transport would otherwise pay
 * at start, for a client it never uses. Node ≥ 22.12 loads an ES module synchronously through `require`
 * (the same module instance `import` gives), so the transport's synchronous factories stay synchronous.
 */
import { createRequire } from 'node:module';
import type * as Client from '@platformatic/kafka';

let client: typeof Client | undefined;

/** The @platformatic/kafka module, loaded on the first call. */
export function platformatic(): typeof Client {
  return (client ??= createRequire(import.meta.url)('@platformatic/kafka') as typeof Client);
}
