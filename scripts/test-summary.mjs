// Adds up the JSON reports vitest wrote in every package and prints one closing line for the run.
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
let passed = 0, failed = 0, skipped = 0, files = 0;
for (const group of ['packages', 'services', 'bench']) {
  const dir = path.join(root, group);
  if (!existsSync(dir)) continue;
  for (const name of readdirSync(dir)) {
    const report = path.join(dir, name, '.vitest', 'results.json');
    if (!existsSync(report)) continue;
    const r = JSON.parse(readFileSync(report, 'utf8'));
    files += 1;
    passed += r.numPassedTests;
    failed += r.numFailedTests;
    skipped += r.numPendingTests + (r.numTodoTests ?? 0);
  }
}
console.log(`\n${files} test reports`);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
