import { randomUUID } from 'node:crypto';
import type { Logger } from '../log.js';
import type { GatewayMetrics } from '../metrics/metrics.js';
import type { TokenCounts } from '../money/cost.js';
import { formatUsd } from '../money/nano.js';
import type { Settlement } from '../settlement/settle.js';

/** A request id, made at the edge and echoed in `x-request-id`. */
export function newRequestId(): string {
  return `req_${randomUUID().replaceAll('-', '')}`;
}

/**
 * One model API request as it passes through the gateway: its id, what it was billed, and how
 * it ended. `finish` writes the access log line and the request metrics exactly once.
 */
export class Exchange {
  readonly id = newRequestId();
  readonly startedAt = performance.now();
  readonly route: string;
  model = '';
  accountId = '';
  status = 0;
  outcome = 'served';
  counts: TokenCounts | undefined;
  estimated = false;
  settlement: Settlement | undefined;
  #finished = false;

  constructor(route: string) {
    this.route = route;
  }

  finish(logger: Logger, metrics: GatewayMetrics): void {
    if (this.#finished) return;
    this.#finished = true;
    const seconds = (performance.now() - this.startedAt) / 1000;
    const model = this.model || 'unknown';

    metrics.requests.inc({ route: this.route, model, status: this.status, outcome: this.outcome });
    metrics.requestDuration.observe({ route: this.route }, seconds);
    logger.info(
      {
        requestId: this.id,
        route: this.route,
        account: this.accountId || undefined,
        model: this.model || undefined,
        status: this.status,
        outcome: this.outcome,
        tokens: this.counts,
        estimated: this.estimated || undefined,
        cost: this.settlement ? formatUsd(this.settlement.costNano) : undefined,
        packTokens: this.settlement?.packTokens || undefined,
        durationMs: Math.round(seconds * 1000),
      },
      'request',
    );
  }
}
