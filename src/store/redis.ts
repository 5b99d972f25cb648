import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../log.js';
import type { GatewayMetrics } from '../metrics/metrics.js';

/**
 * Connects to the balance store. The options make an outage fail fast instead of queueing:
 * a command issued while Redis is away is refused at once (no offline queue, no retry of a
 * command in flight), and the caller decides what a failure means on its path.
 */
export function connectRedis(url: string, logger: Logger, metrics: GatewayMetrics): Redis {
  const options: RedisOptions = {
    // Auto-pipelining defers every command to a setImmediate and wraps it in a Pipeline. Measured
    // here on EVALSHA with 7 keys and 8 arguments: about 60 µs more CPU and 90 µs more latency
    // per call one at a time, and no saving with 50 calls in flight. Admission sits in front of
    // every request's first byte, so commands are written at once instead.
    enableAutoPipelining: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 5_000,
    connectTimeout: 2_000,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 1_000),
  };
  const redis = url.startsWith('redis+unix://')
    ? new Redis({ ...options, path: url.slice('redis+unix://'.length) })
    : new Redis(url, options);

  redis.on('ready', () => {
    metrics.redisUp.set(1);
    logger.info('redis connected');
  });
  redis.on('close', () => {
    metrics.redisUp.set(0);
  });
  redis.on('error', (error: Error) => {
    logger.warn({ err: error.message }, 'redis connection error');
  });
  return redis;
}
