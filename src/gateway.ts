import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { type ServerType, serve } from '@hono/node-server';
import { createAdminApp } from './admin/app.js';
import type { GatewayConfig } from './config.js';
import type { Deps } from './deps.js';
import { createPublicApp } from './http/public-app.js';
import { createLogger, type Logger } from './log.js';
import { recordBilling } from './metrics/billing.js';
import { createMetrics } from './metrics/metrics.js';
import { loadPriceBook } from './money/prices.js';
import { type Charge, SettleCode, type Settlement } from './settlement/settle.js';
import { Settler } from './settlement/settler.js';
import { type RedisServer, startRedisServer } from './store/embedded.js';
import { connectRedis } from './store/redis.js';
import { Scripts } from './store/scripts.js';
import { createUpstreamAgent } from './upstream/client.js';
import { Deadlines } from './upstream/deadlines.js';

export interface Gateway {
  deps: Deps;
  publicUrl: string;
  adminUrl: string;
  /** Stops accepting, lets requests in flight finish within the grace period, then stops. */
  close(): Promise<void>;
}

export interface GatewayOptions {
  /** Where logs go; standard output by default. */
  logDestination?: NodeJS.WritableStream;
}

/** Starts a gateway: its store, its two listeners, and its pending settlements. */
export async function startGateway(
  config: GatewayConfig,
  options: GatewayOptions = {},
): Promise<Gateway> {
  const logger = createLogger(config.logLevel, options.logDestination);
  const metrics = createMetrics();
  const prices = loadPriceBook(config.pricesFile);

  const embedded = config.redisUrl ? undefined : await startEmbeddedRedis(config, logger);
  const redis = connectRedis(config.redisUrl ?? (embedded as RedisServer).url, logger, metrics);
  await readyOrTimeout(redis, 5_000);
  const scripts = new Scripts(redis, metrics);
  await loadScriptsWhenReady(redis, scripts, logger);

  const meteredAccounts = new Set(config.metricsAccounts);
  const settler = new Settler(scripts, resolve(config.settlementJournalDir), logger, metrics);
  settler.on('settled', (charge: Charge, settlement: Settlement) => {
    if (settlement.code === SettleCode.Settled)
      recordBilling(metrics, meteredAccounts, charge, settlement);
  });
  const replayed = settler.replayJournal();
  const agent = createUpstreamAgent({
    connectMs: config.upstreamConnectTimeoutMs,
    headersMs: config.upstreamHeadersTimeoutMs,
    idleMs: config.upstreamIdleTimeoutMs,
  });

  const deadlines = new Deadlines();
  const deps: Deps = { config, prices, redis, scripts, settler, agent, deadlines, logger, metrics };
  const publicServer = await listen(createPublicApp(deps), config.host, config.port);
  const adminServer = await listen(createAdminApp(deps), config.adminHost, config.adminPort);
  logStartup(deps, replayed);

  return {
    deps,
    publicUrl: urlOf(publicServer),
    adminUrl: urlOf(adminServer),
    close: async () => {
      await closeServers(deps, [publicServer, adminServer]);
      settler.close();
      deadlines.close();
      await agent.close();
      redis.disconnect();
      await embedded?.stop();
    },
  };
}

async function startEmbeddedRedis(config: GatewayConfig, logger: Logger): Promise<RedisServer> {
  const server = await startRedisServer({ dir: config.redisDataDir });
  logger.info({ dir: resolve(config.redisDataDir) }, 'started private redis-server');
  return server;
}

/** Waits for the first connection, but starts anyway: `/healthz` says when Redis is there. */
async function readyOrTimeout(redis: Deps['redis'], ms: number): Promise<void> {
  if (redis.status === 'ready') return;
  const timer = new Promise((done) => setTimeout(done, ms).unref());
  await Promise.race([once(redis, 'ready'), timer]);
}

/** Loads the scripts now if Redis answers, and again whenever it comes back. */
async function loadScriptsWhenReady(
  redis: Deps['redis'],
  scripts: Scripts,
  logger: Logger,
): Promise<void> {
  const load = () =>
    scripts
      .load()
      .catch((error: Error) => logger.warn({ err: error.message }, 'script load failed'));
  redis.on('ready', () => void load());
  if (redis.status === 'ready') await load();
}

type FetchHandler = Parameters<typeof serve>[0]['fetch'];

function listen(app: { fetch: FetchHandler }, hostname: string, port: number): Promise<ServerType> {
  return new Promise((resolveListening, reject) => {
    const server = serve({ fetch: app.fetch, hostname, port }, () => resolveListening(server));
    server.once('error', reject);
  });
}

function urlOf(server: ServerType): string {
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}`;
}

/**
 * Stops accepting connections and waits for requests in flight, streams included, to finish
 * and settle, up to the grace period; whatever is still open then is cut.
 */
async function closeServers(deps: Deps, servers: ServerType[]): Promise<void> {
  const closed = servers.map((server) => new Promise<void>((done) => server.close(() => done())));
  for (const server of servers) {
    if ('closeIdleConnections' in server) server.closeIdleConnections();
  }
  const grace = new Promise<'timeout'>((done) =>
    setTimeout(() => done('timeout'), deps.config.shutdownGraceMs).unref(),
  );
  if ((await Promise.race([Promise.all(closed), grace])) === 'timeout') {
    deps.logger.warn('shutdown grace period over; closing remaining connections');
    for (const server of servers) {
      if ('closeAllConnections' in server) server.closeAllConnections();
    }
  }
}

function logStartup(deps: Deps, replayed: number): void {
  const { config, logger } = deps;
  if (!config.adminToken) {
    logger.warn('ADMIN_TOKEN is not set: the operator API (/admin/*) answers 503 until it is');
  }
  if (!config.upstreamApiKey)
    logger.warn('UPSTREAM_API_KEY is not set: upstream calls carry no key');
  logger.info(
    {
      public: `${config.host}:${config.port}`,
      admin: `${config.adminHost}:${config.adminPort}`,
      redis: config.redisUrl ? 'external' : 'embedded',
      upstreamOpenAi: config.upstreamOpenAiUrl,
      upstreamAnthropic: config.upstreamAnthropicUrl,
      holds: config.holds,
      models: deps.prices.models(),
      replayedSettlements: replayed,
    },
    'gateway started',
  );
}
