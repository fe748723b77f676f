/** Labels of every runtime measurement. */
export interface AgentLabels {
  readonly agent: string;
  readonly topic: string;
}

/**
 * What the runtime reports as it works. The Prometheus metrics implement it; tests may too. Every method
 * must be cheap and must not throw: it is called on the hot path.
 */
export interface Instrumentation {
  processed(labels: AgentLabels, durationSeconds: number): void;
  failed(labels: AgentLabels, error: Error): void;
  retried(labels: AgentLabels): void;
  deadLettered(labels: AgentLabels): void;
  inFlight(labels: AgentLabels, delta: number): void;
  committed(topic: string, partition: number, offset: number): void;
  fetched(topic: string, partition: number, highWatermark: number): void;
  revoked(topic: string, partition: number): void;
  /** An agent runner's circuit for `dependency` opened (`up` false) or closed. */
  dependency(labels: AgentLabels, dependency: string, up: boolean): void;
  /**
   * A table partition's restore progressed: `lag` changelog entries are left to read before it ends (0 once
   * done), `restored` were read so far. Optional.
   */
  restoring?(table: string, partition: number, lag: number, restored: number): void;
  /**
   * A table partition's local store (`stateDir`) was checkpointed at changelog offset `offset`: a restore
   * here reads the changelog from there. Optional.
   */
  checkpointed?(table: string, partition: number, offset: number): void;
}

/** Records nothing. */
export const noInstrumentation: Instrumentation = {
  processed: () => undefined,
  failed: () => undefined,
  retried: () => undefined,
  deadLettered: () => undefined,
  inFlight: () => undefined,
  committed: () => undefined,
  fetched: () => undefined,
  revoked: () => undefined,
  dependency: () => undefined,
};
