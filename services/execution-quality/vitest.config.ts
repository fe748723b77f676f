import { mergeConfig } from 'vitest/config';
import { sharedTestConfig } from '../../vitest.shared.js';

// One test file at a time: the integration test stops the local InfluxDB for a few seconds, which the other
// files (all on the real InfluxDB) must not overlap.
export default mergeConfig(sharedTestConfig, { test: { fileParallelism: false } });
