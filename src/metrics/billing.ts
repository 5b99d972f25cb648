import { kindCostNano } from '../money/cost.js';
import { NANO_PER_USD } from '../money/nano.js';
import { TOKEN_KINDS } from '../money/prices.js';
import type { Charge, Settlement } from '../settlement/settle.js';
import type { GatewayMetrics } from './metrics.js';

/**
 * Counts a settled charge: tokens by kind, and USD by kind. Metrics are floats, which is fine
 * for dashboards; the ledger in Redis is the exact record.
 */
export function recordBilling(
  metrics: GatewayMetrics,
  accountsWithMetrics: ReadonlySet<string>,
  charge: Charge,
  settlement: Settlement,
): void {
  const { model } = charge;
  for (const kind of TOKEN_KINDS) metrics.tokens.inc({ model, kind }, charge.counts[kind]);
  if (settlement.packTokens > 0) metrics.packTokens.inc({ model }, settlement.packTokens);
  if (charge.estimated) metrics.estimatedUsage.inc({ model, reason: 'no_usage' });

  // Pack tokens cover kinds in billing order; the rest is priced, kind by kind, as settle does.
  let packLeft = settlement.packTokens;
  for (const kind of TOKEN_KINDS) {
    const covered = Math.min(packLeft, charge.counts[kind]);
    packLeft -= covered;
    const nano = kindCostNano(charge.counts[kind] - covered, charge.prices[kind]);
    if (nano > 0n) metrics.billedUsd.inc({ model, kind }, Number(nano) / Number(NANO_PER_USD));
  }
  if (accountsWithMetrics.has(charge.accountId)) {
    const usd = Number(settlement.costNano) / Number(NANO_PER_USD);
    metrics.accountBilledUsd.inc({ account: charge.accountId }, usd);
  }
}
