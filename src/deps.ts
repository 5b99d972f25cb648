import type { Redis } from 'ioredis';
import type { Agent } from 'undici';
import type { GatewayConfig } from './config.js';
import type { Logger } from './log.js';
import type { GatewayMetrics } from './metrics/metrics.js';
import type { PriceBook } from './money/prices.js';
import type { Settler } from './settlement/settler.js';
import type { Scripts } from './store/scripts.js';
import type { Deadlines } from './upstream/deadlines.js';

/** What the routes of one gateway instance share. */
export interface Deps {
  config: GatewayConfig;
  prices: PriceBook;
  redis: Redis;
  scripts: Scripts;
  settler: Settler;
  agent: Agent;
  deadlines: Deadlines;
  logger: Logger;
  metrics: GatewayMetrics;
}
