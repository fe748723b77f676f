import { defineConfig } from 'vitest/config';

/**
 * The vitest settings every package shares. Each run also writes a JSON report to `.vitest/results.json`
 * so `scripts/test.sh` can print one total for the whole workspace.
 */
export const sharedTestConfig = defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default', ['json', { outputFile: '.vitest/results.json' }]],
  },
});
