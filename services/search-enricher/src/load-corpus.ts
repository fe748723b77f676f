/**
 * Creates an index with the sample product mapping and bulk-loads a deterministic generated corpus:
 *
 *   node dist/load-corpus.js --index products [--docs 10000] [--seed 42] [--recreate]
 *
 * Elasticsearch is `ELASTICSEARCH_URL` (default http://127.0.0.1:9200), with `ELASTICSEARCH_API_KEY` or
 * `ELASTICSEARCH_USERNAME` + `ELASTICSEARCH_PASSWORD` when security is on.
 */
import { loadConfig, toError } from '@stream/core';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { loadCorpus } from './corpus.js';
import { createElasticsearchClient } from './elasticsearch.js';

const Env = z.object({
  ELASTICSEARCH_URL: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:9200'),
  ELASTICSEARCH_API_KEY: z.string().min(1).optional(),
  ELASTICSEARCH_USERNAME: z.string().min(1).optional(),
  ELASTICSEARCH_PASSWORD: z.string().min(1).optional(),
});

const USAGE = 'usage: node dist/load-corpus.js --index NAME [--docs N] [--seed N] [--recreate]';

/** The command line, parsed and checked. */
export function parseCommandLine(args: readonly string[]): { index: string; docs: number; seed: number; recreate: boolean } {
  const { values } = parseArgs({
    args: [...args],
    options: { index: { type: 'string' }, docs: { type: 'string' }, seed: { type: 'string' }, recreate: { type: 'boolean' } },
    strict: true,
  });
  if (!values.index || !/^[a-z0-9][a-z0-9._-]*$/.test(values.index)) throw new Error(`--index: a lower-case index name is required\n${USAGE}`);
  const int = (name: string, raw: string | undefined, fallback: number, max: number) => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0 || n > max) throw new Error(`--${name}: expected an integer from 0 to ${max}\n${USAGE}`);
    return n;
  };
  return {
    index: values.index,
    docs: int('docs', values.docs, 10_000, 10_000_000),
    seed: int('seed', values.seed, 42, 2 ** 31),
    recreate: values.recreate ?? false,
  };
}

async function main(): Promise<void> {
  const options = parseCommandLine(process.argv.slice(2));
  const env = loadConfig(Env);
  const client = createElasticsearchClient({
    url: env.ELASTICSEARCH_URL,
    apiKey: env.ELASTICSEARCH_API_KEY,
    username: env.ELASTICSEARCH_USERNAME,
    password: env.ELASTICSEARCH_PASSWORD,
    timeoutMs: 60_000,
  });
  try {
    const started = Date.now();
    const count = await loadCorpus(client, options);
    process.stdout.write(`loaded ${count} documents into ${options.index} in ${Date.now() - started} ms\n`);
  } finally {
    await client.close();
  }
}

if (import.meta.main) {
  main().catch((error: unknown) => {
    process.stderr.write(`load-corpus: ${toError(error).message}\n`);
    process.exitCode = 1;
  });
}
