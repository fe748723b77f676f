/** The data sets as files (`key<TAB>json-without-closing-brace` per line) for the Java producer, cached in the temp dir. */
import { existsSync, mkdirSync, openSync, closeSync, renameSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { datasetId, generate, type DatasetSpec } from './data.js';

/** Writes the data set file unless it is already cached, and returns its path. */
export function datasetFile(spec: DatasetSpec): string {
  const dir = path.join(tmpdir(), 'stream-bench-data');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${datasetId(spec)}.tsv`);
  if (existsSync(file)) return file;
  const partial = `${file}.${process.pid}.partial`;
  const fd = openSync(partial, 'w');
  try {
    let lines: string[] = [];
    for (const record of generate(spec)) {
      lines.push(`${record.key}\t${JSON.stringify(record.value).slice(0, -1)}`);
      if (lines.length >= 10_000) {
        writeSync(fd, `${lines.join('\n')}\n`);
        lines = [];
      }
    }
    if (lines.length > 0) writeSync(fd, `${lines.join('\n')}\n`);
  } finally {
    closeSync(fd);
  }
  renameSync(partial, file);
  return file;
}
