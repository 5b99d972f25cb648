import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The gateway's Prometheus metrics, one registry per gateway instance so that tests can run
 * several gateways in one process.
 *
 * No label carries an account id: account ids are unbounded, and one series per account would
 * grow the scrape without limit. `METRICS_ACCOUNTS` opts a bounded list of accounts into
 * `longcat_gateway_account_billed_usd_total`.
 */
export interface GatewayMetrics {
  registry: Registry;
  requests: Counter<'route' | 'model' | 'status' | 'outcome'>;
  tokens: Counter<'model' | 'kind'>;
  packTokens: Counter<'model'>;
  billedUsd: Counter<'model' | 'kind'>;
  accountBilledUsd: Counter<'account'>;
  requestDuration: Histogram<'route'>;
  upstreamTtfb: Histogram<'route'>;
  redisScriptDuration: Histogram<'script' | 'result'>;
  requestsInFlight: Gauge;
  holdsInFlight: Gauge;
  settlementRetries: Counter;
  settlementFailures: Counter;
  settlementsPending: Gauge;
  estimatedUsage: Counter<'model' | 'reason'>;
  upstreamQuotaExhausted: Counter;
  redisUp: Gauge;
}

const PREFIX = 'longcat_gateway_';

const MISNAMED_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

export function createMetrics(): GatewayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // These three are gauges named like counters, which `promtool check metrics` rejects; the
  // same figures stay available, broken down by type, as nodejs_active_{handles,requests,…}.
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name);
  const registers = [registry];

  return {
    registry,
    requests: new Counter({
      name: `${PREFIX}requests_total`,
      help:
        'Model API requests by route, model, HTTP status and outcome ' +
        '(served, upstream_error, or the refusal code).',
      labelNames: ['route', 'model', 'status', 'outcome'],
      registers,
    }),
    tokens: new Counter({
      name: `${PREFIX}tokens_total`,
      help:
        'Tokens metered from upstream 200 responses, by model and kind ' +
        '(uncached_input, cached_input, output).',
      labelNames: ['model', 'kind'],
      registers,
    }),
    packTokens: new Counter({
      name: `${PREFIX}pack_tokens_total`,
      help: 'Tokens covered by token packs instead of money.',
      labelNames: ['model'],
      registers,
    }),
    billedUsd: new Counter({
      name: `${PREFIX}billed_usd_total`,
      help: 'USD charged to balances, by model and token kind.',
      labelNames: ['model', 'kind'],
      registers,
    }),
    accountBilledUsd: new Counter({
      name: `${PREFIX}account_billed_usd_total`,
      help: 'USD charged, per account, only for the accounts listed in METRICS_ACCOUNTS.',
      labelNames: ['account'],
      registers,
    }),
    requestDuration: new Histogram({
      name: `${PREFIX}request_duration_seconds`,
      help: 'Time from receiving a model API request to the end of its response.',
      labelNames: ['route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    }),
    upstreamTtfb: new Histogram({
      name: `${PREFIX}upstream_ttfb_seconds`,
      help: 'Time from sending a request upstream to its status line.',
      labelNames: ['route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    redisScriptDuration: new Histogram({
      name: `${PREFIX}redis_script_duration_seconds`,
      help: 'Latency of each Lua script call, by script and result (ok or error).',
      labelNames: ['script', 'result'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
      registers,
    }),
    requestsInFlight: new Gauge({
      name: `${PREFIX}requests_in_flight`,
      help: 'Model API requests admitted and not yet settled or refused.',
      registers,
    }),
    holdsInFlight: new Gauge({
      name: `${PREFIX}holds_in_flight`,
      help: 'Balance holds placed by this instance and not yet released.',
      registers,
    }),
    settlementRetries: new Counter({
      name: `${PREFIX}settlement_retries_total`,
      help: 'Settlement attempts repeated after Redis could not be reached.',
      registers,
    }),
    settlementFailures: new Counter({
      name: `${PREFIX}settlement_failures_total`,
      help: 'Settlement attempts that failed; each is kept and retried until it lands.',
      registers,
    }),
    settlementsPending: new Gauge({
      name: `${PREFIX}settlements_pending`,
      help: 'Settlements waiting for Redis to come back.',
      registers,
    }),
    estimatedUsage: new Counter({
      name: `${PREFIX}estimated_usage_total`,
      help:
        'Billed requests whose 200 response carried no usage, ' +
        'so the gateway counted tokens itself.',
      labelNames: ['model', 'reason'],
      registers,
    }),
    upstreamQuotaExhausted: new Counter({
      name: `${PREFIX}upstream_quota_exhausted_total`,
      help: "Upstream answers saying the operator's own LongCat balance is exhausted.",
      registers,
    }),
    redisUp: new Gauge({
      name: `${PREFIX}redis_up`,
      help: '1 while the balance store is reachable, 0 otherwise.',
      registers,
    }),
  };
}
