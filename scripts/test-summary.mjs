// Adds up the JSON reports vitest wrote in every package and prints one closing line for the run,
// preceded by the name and first error line of every failed test so a CI log's tail says what broke.
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
let passed = 0,
  failed = 0,
  skipped = 0,
  files = 0;
const failures = [];
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
    for (const suite of r.testResults ?? []) {
      const file = path.relative(root, suite.name);
      const failedTests = (suite.assertionResults ?? []).filter((t) => t.status === 'failed');
      for (const t of failedTests) {
        const first = String(t.failureMessages?.[0] ?? '')
          .split('\n')[0]
          .slice(0, 300);
        failures.push(`  ✗ ${file} › ${t.fullName}\n      ${first}`);
      }
      // A file that failed before any test ran (import error, hook failure) has no failed assertion.
      if (suite.status === 'failed' && failedTests.length === 0) {
        failures.push(
          `  ✗ ${file}\n      ${String(suite.message ?? '')
            .split('\n')[0]
            .slice(0, 300)}`,
        );
      }
    }
  }
}
console.log(`\n${files} test reports`);
if (failures.length > 0) console.log(`failed:\n${failures.join('\n')}`);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
