/**
 * Which build of @stream/core the consumers run: a hash of its compiled JavaScript. The runtime is
 * developed while benchmarks run, so each run records it and the report flags a scenario whose runs saw
 * different builds.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export function coreBuild(): string {
  const dist = path.dirname(fileURLToPath(import.meta.resolve('@stream/core')));
  const hash = createHash('sha256');
  const files = readdirSync(dist, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.js'))
    .sort();
  for (const file of files) hash.update(file).update(readFileSync(path.join(dist, file)));
  return hash.digest('hex').slice(0, 12);
}
