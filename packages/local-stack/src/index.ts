export { localServers, requireServers, type LocalServers, type ServerName } from './servers.js';
export { uniqueName } from './names.js';
export { testKafka, withAdmin, createTopics, deleteTopics, deleteRecordsBefore } from './kafka.js';
export { createInfluxBucket, dropInfluxBucket } from './influxdb.js';
export { startService, waitReady, stopService, killService, runScript, type RunningService } from './services.js';
export {
  EmailSink,
  type Answer,
  type EmailSinkOptions,
  type Outage,
  type Script,
  type SentEmail,
  type SinkEvent,
  type SinkRequest,
  type SinkStats,
} from './email-sink.js';
export { waitUntil } from './wait-until.js';
export { startServer, stopServer, withServerStopped, stackCommand } from './stack.js';
