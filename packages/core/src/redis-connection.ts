import type { Service } from './service.js';

/**
 * How a service's Redis client connects: one retry per command (an outage fails a command fast, and the agent's
 * own retry takes over), a 2 s connect timeout, and reconnects 200 ms apart growing to 2 s, forever.
 */
export interface RedisConnectionOptions {
  readonly maxRetriesPerRequest: number;
  readonly connectTimeout: number;
  readonly retryStrategy: (times: number) => number;
}

/** What the service shell uses of an ioredis client (core does not depend on ioredis; the service passes its class). */
export interface RedisLike {
  on(event: 'error', listener: (error: Error) => void): unknown;
  ping(): Promise<string>;
  quit(): Promise<unknown>;
}

/** An ioredis-like client class: `new Redis(url, options)`. */
export type RedisClass<C extends RedisLike> = new (url: string, options: RedisConnectionOptions) => C;

const connection: RedisConnectionOptions = { maxRetriesPerRequest: 1, connectTimeout: 2000, retryStrategy: (times) => Math.min(times * 200, 2000) };

/**
 * Connects a service to Redis the way every Redis-backed service does: connection errors are warnings (the client
 * reconnects by itself), `/readyz` waits for `PING` → `PONG`, and the client quits when the app stops (after the
 * hooks added later, e.g. an HTTP server that still serves from Redis while it drains).
 *
 * @example
 * import { Redis } from 'ioredis';
 * const redis = connectRedis(Redis, config.REDIS_URL, service);
 */
export function connectRedis<C extends RedisLike>(Redis: RedisClass<C>, url: string, service: Service): C {
  const redis = new Redis(url, connection);
  redis.on('error', (error) => service.log.warn({ err: error }, 'redis connection error'));
  service.readiness('redis', async () => (await redis.ping()) === 'PONG');
  service.app.onStop(async () => {
    await redis.quit();
  });
  return redis;
}
