export { App, createApp, type AppOptions, type AppState, type HeaderLimits, type StopResult } from './app.js';
export type { AppHealth, AgentHealth, ConsumerHealth, PartitionHealth, PartitionLag, StuckRecord, UnfinishedRecord } from './health.js';
export { DEFAULT_STUCK_AFTER_MS } from './health.js';
export type { AgentContext, AgentHandler, AgentOptions, BatchAgentOptions, DeadLetterOptions, Ordering, RetryTopicsOptions } from './agent.js';
export type { BatchContext, BatchHandler, BatchOptions, BatchOutcomes, BatchRecord } from './batch.js';
export { AgentStream, type StreamAgentFunction } from './stream.js';
export {
  cronSchedule,
  intervalSchedule,
  leaderTopicName,
  type CrontabOptions,
  type Schedule,
  type TimerContext,
  type TimerFunction,
  type TimerHealth,
  type TimerOptions,
} from './timers.js';
export {
  defineTopic,
  decodeHeaders,
  encodeHeaders,
  Topic,
  type AnyTopic,
  type KeyOf,
  type ValueOf,
  type RecordSender,
  type TopicOptions,
  type Decoded,
} from './topic.js';
export type { Headers, OutgoingRecord, StreamRecord } from './record.js';
export { jsonCodec, stringCodec, bytesCodec, type Codec } from './codec.js';
export type { Schema, InputOf, OutputOf } from './schema.js';
export {
  StreamError,
  SchemaValidationError,
  DecodeError,
  EncodeError,
  NonRetryableError,
  isNonRetryable,
  toError,
  type StreamErrorCode,
  type ErrorContext,
  type SchemaIssue,
} from './errors.js';
export { createLogger, silentLogger, REDACT_PATHS, type Logger } from './logger.js';
export type { RetryOptions, BackoffOptions } from './runtime/backoff.js';
export { classifyFailure, DependencyError, isUnavailableStatus, type Classifier, type FailedRecord, type FailureClass } from './runtime/classify.js';
export type { DependencyCheck, OpenCircuit } from './runtime/circuit.js';
export { DEAD_LETTER_HEADERS } from './runtime/dead-letter.js';
export { RETRY_HEADERS } from './runtime/retry-topics.js';
export { deadLetterTopicName, retryTopicName, delayLabel, agentName } from './topology.js';
export type { Instrumentation, AgentLabels } from './runtime/instrumentation.js';
export { CommitTracker } from './runtime/commit-tracker.js';
export {
  KafkaTransport,
  type KafkaSaslOauthBearerOptions,
  type KafkaSaslOptions,
  type KafkaSaslPasswordOptions,
  type KafkaTransportOptions,
} from './transport/kafka/index.js';
export { PlatformaticTransport, type GroupProtocol, type PlatformaticTransportOptions } from './transport/platformatic/index.js';
export { KAFKA_CLIENTS, type KafkaClient, type KafkaConnectionOptions } from './transport/select.js';
export { MemoryBroker, MemoryTransport } from './transport/memory/index.js';
export type * from './transport/transport.js';
export { loadConfig } from './config.js';
export { RuntimeMetrics } from './ops/metrics.js';
export { DEFAULT_OPS_HOST, failureClass, startOpsServer, type OpsServer, type OpsServerOptions, type ReadinessCheck } from './ops/server.js';
export { MAX_TABLE_KEY_BYTES, TABLE_OWNER_HEADER } from './ops/tables.js';
export { defaultAdvertisedUrl } from './ops/advertise.js';
export {
  createService,
  defineService,
  type Service,
  type ServiceDefinition,
  type ServiceOptions,
  type ServiceShellOptions,
  type ServiceWiring,
} from './service.js';
export {
  DEFAULT_HTTP_HOST,
  httpHost,
  httpPort,
  loadServiceConfig,
  kafkaConnection,
  loadKafkaConnection,
  type Environment,
  type KafkaConnection,
  type KafkaEnvironment,
  type PemFile,
  type TokenFile,
  type ServiceConfig,
  type ServiceEnvironment,
} from './service-config.js';
export { connectRedis, type RedisClass, type RedisConnectionOptions, type RedisLike } from './redis-connection.js';
export { Batcher, type BatcherOptions } from './batcher.js';
export { untilAborted } from './abort.js';
export { Table, TableView, changelogTopicName, SOURCE_OFFSET_HEADER } from './table.js';
export type { AnyTable, TableOf, TableOptions } from './table.js';
export { GlobalTable, DEFAULT_GLOBAL_TABLE_INTERVAL_MS } from './global-table.js';
export type { AnyGlobalTable, GlobalTableHealth, GlobalTableOptions, GlobalTablePartitionHealth, SkippedRecord } from './global-table.js';
export { WindowedTable, WindowedTableView, EventTimeError, LateRecordError, STREAM_TIME_HEADER } from './windowed-table.js';
export type { ClosedWindow, Window, WindowCloseOptions, WindowedTableOf, WindowedTableOptions, WindowOptions, WindowValue } from './windowed-table.js';
export type { ReadPartitionOptions } from './transport/transport.js';
