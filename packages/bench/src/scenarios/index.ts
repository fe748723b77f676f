/**
 * The scenario registry. To add one (e.g. a per-service end-to-end scenario): implement `Scenario`
 * (./types.ts) in a new file, usually with `runPair` (./pair.ts) and a consumer program per side in
 * ../consumers (add its name to `ConsumerProgram` in ../child.ts), then list it here. `--scenario <name>`
 * selects it; the report shows its ratio and target like the others.
 */
import { backlogMemory } from './backlog-memory.js';
import { ioKeyed } from './io-keyed.js';
import { defaults, exactlyOnce, passthrough, passthroughStream } from './passthrough.js';
import { serviceScenarios } from './services.js';
import { tableRestore } from './table-restore.js';
import { tableUpdates } from './table-updates.js';
import type { Scenario } from './types.js';

export const scenarios: readonly Scenario[] = [
  defaults,
  passthrough,
  passthroughStream,
  ioKeyed,
  backlogMemory,
  exactlyOnce,
  tableUpdates,
  tableRestore,
  ...serviceScenarios,
];

export function findScenario(name: string): Scenario | undefined {
  return scenarios.find((s) => s.name === name);
}

export type { Scenario, ScenarioContext, ScenarioResult } from './types.js';
