import { z } from 'zod';

const port = z.coerce.number().int().min(0).max(65535);
const millis = z.coerce.number().int().positive();

const ENV = z.object({
  HOST: z.string().default('0.0.0.0'),
  PORT: port.default(8080),
  ADMIN_HOST: z.string().default('127.0.0.1'),
  ADMIN_PORT: port.default(8081),
  ADMIN_TOKEN: z.string().min(1).optional(),
  REDIS_URL: z.string().min(1).optional(),
  REDIS_DATA_DIR: z.string().default('./data/redis'),
  UPSTREAM_OPENAI_URL: z.url().default('https://api.longcat.chat/openai'),
  UPSTREAM_ANTHROPIC_URL: z.url().default('https://api.longcat.chat/anthropic'),
  UPSTREAM_API_KEY: z.string().min(1).optional(),
  PRICES_FILE: z.string().min(1).optional(),
  MAX_BODY_BYTES: z.coerce.number().int().positive().default(16_777_216),
  UPSTREAM_CONNECT_TIMEOUT_MS: millis.default(10_000),
  UPSTREAM_HEADERS_TIMEOUT_MS: millis.default(600_000),
  UPSTREAM_IDLE_TIMEOUT_MS: millis.default(300_000),
  REQUEST_TIMEOUT_MS: millis.default(900_000),
  HOLDS: z.enum(['on', 'off']).default('on'),
  DEFAULT_MAX_OUTPUT_TOKENS: z.coerce.number().int().positive().default(8192),
  SHUTDOWN_GRACE_MS: millis.default(30_000),
  SETTLEMENT_JOURNAL_DIR: z.string().default('./data/settlements'),
  METRICS_ACCOUNTS: z.string().default(''),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** The gateway's configuration, read once from the environment at start-up. */
export interface GatewayConfig {
  host: string;
  port: number;
  adminHost: string;
  adminPort: number;
  adminToken: string | undefined;
  redisUrl: string | undefined;
  redisDataDir: string;
  upstreamOpenAiUrl: string;
  upstreamAnthropicUrl: string;
  upstreamApiKey: string | undefined;
  pricesFile: string | undefined;
  maxBodyBytes: number;
  upstreamConnectTimeoutMs: number;
  upstreamHeadersTimeoutMs: number;
  upstreamIdleTimeoutMs: number;
  /** Bounds a whole request, including reading on after a client left; holds lapse after it. */
  requestTimeoutMs: number;
  holds: boolean;
  /** Output tokens assumed for a hold when a request names no `max_tokens`. */
  defaultMaxOutputTokens: number;
  shutdownGraceMs: number;
  settlementJournalDir: string;
  metricsAccounts: string[];
  logLevel: string;
}

/** Reads the configuration; a bad value throws with the variable's name in the message. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const result = ENV.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new Error(`Invalid configuration: ${problems.join('; ')}`);
  }

  const e = result.data;
  return {
    host: e.HOST,
    port: e.PORT,
    adminHost: e.ADMIN_HOST,
    adminPort: e.ADMIN_PORT,
    adminToken: e.ADMIN_TOKEN,
    redisUrl: e.REDIS_URL,
    redisDataDir: e.REDIS_DATA_DIR,
    upstreamOpenAiUrl: e.UPSTREAM_OPENAI_URL.replace(/\/+$/, ''),
    upstreamAnthropicUrl: e.UPSTREAM_ANTHROPIC_URL.replace(/\/+$/, ''),
    upstreamApiKey: e.UPSTREAM_API_KEY,
    pricesFile: e.PRICES_FILE,
    maxBodyBytes: e.MAX_BODY_BYTES,
    upstreamConnectTimeoutMs: e.UPSTREAM_CONNECT_TIMEOUT_MS,
    upstreamHeadersTimeoutMs: e.UPSTREAM_HEADERS_TIMEOUT_MS,
    upstreamIdleTimeoutMs: e.UPSTREAM_IDLE_TIMEOUT_MS,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    holds: e.HOLDS === 'on',
    defaultMaxOutputTokens: e.DEFAULT_MAX_OUTPUT_TOKENS,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    settlementJournalDir: e.SETTLEMENT_JOURNAL_DIR,
    metricsAccounts: e.METRICS_ACCOUNTS.split(',')
      .map((a) => a.trim())
      .filter(Boolean),
    logLevel: e.LOG_LEVEL,
  };
}
