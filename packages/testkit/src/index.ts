export { localServers, requireServers, type LocalServers, type ServerName } from './servers.js';
export { uniqueName } from './names.js';
export { testKafka, withAdmin, createTopics, deleteTopics } from './kafka.js';
export { createInfluxBucket, dropInfluxBucket } from './influxdb.js';
export { startServer, stopServer, withServerStopped } from './stack.js';
