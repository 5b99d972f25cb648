import { GatewayError } from '../errors.js';
import type { TokenCounts } from '../money/cost.js';
import { type PicoPerToken, TOKEN_KINDS } from '../money/prices.js';
import { accountKeys, spendingKeys } from '../store/keys.js';
import type { Scripts } from '../store/scripts.js';

/** Mirrors the return codes in the header of `lua/settle.lua`. */
export enum SettleCode {
  Settled = 1,
  AlreadySettled = 0,
}

/** What one served request owes, as measured from its response. */
export interface Charge {
  accountId: string;
  requestId: string;
  model: string;
  /** When the response ended; the record's time and the month it is billed in. */
  createdAtMs: number;
  counts: TokenCounts;
  /** Prices in effect when the request was admitted. */
  prices: PicoPerToken;
  /** The hold admission placed, nano-dollars (a decimal string, so that it survives JSON). */
  heldNano: string;
  estimated: boolean;
}

export interface Settlement {
  code: SettleCode;
  costNano: bigint;
  packTokens: number;
  fromCreditsNano: bigint;
  fromPaidNano: bigint;
}

/**
 * How long a request id stays marked as billed. Each marker is a key, so the lifetime is what
 * the exactly-once guarantee costs in memory: a week of request ids.
 */
const SETTLED_MARKER_SECONDS = 7 * 24 * 3600;

/**
 * A charge may be retried while its marker would surely still stand if an earlier try landed:
 * the marker's lifetime less a day. An older charge is refused rather than risk billing twice.
 */
export const RETRY_WINDOW_MS = (SETTLED_MARKER_SECONDS - 24 * 3600) * 1000;

/**
 * Bills a charge exactly once by its request id. Throws when Redis cannot be reached; the
 * caller keeps the charge and retries (see `Settler`), which is safe because a repeat of a
 * request id that did land changes nothing.
 */
export async function settle(scripts: Scripts, charge: Charge): Promise<Settlement> {
  assertExact(charge);
  if (Date.now() - charge.createdAtMs > RETRY_WINDOW_MS) {
    throw new GatewayError(
      'internal_error',
      `Charge ${charge.requestId} is older than the settlement window; settle it by hand.`,
    );
  }
  const k = accountKeys(charge.accountId);
  const createdAt = new Date(charge.createdAtMs).toISOString();
  const keys = [
    ...spendingKeys(k),
    k.settled(charge.requestId),
    k.usage,
    k.month(createdAt.slice(0, 7)),
  ];
  const args = [
    charge.requestId,
    Date.now(),
    createdAt,
    charge.model,
    ...TOKEN_KINDS.map((kind) => charge.counts[kind]),
    ...TOKEN_KINDS.map((kind) => charge.prices[kind]),
    charge.estimated ? '1' : '0',
    SETTLED_MARKER_SECONDS,
    charge.heldNano,
  ];

  const [code, cost, packTokens, fromCredits, fromPaid] = (await scripts.run(
    'settle',
    keys,
    args,
  )) as [SettleCode, string, string, string, string];
  return {
    code,
    costNano: BigInt(cost),
    packTokens: Number(packTokens),
    fromCreditsNano: BigInt(fromCredits),
    fromPaidNano: BigInt(fromPaid),
  };
}

/**
 * The settle script multiplies token counts by pico-dollar prices in Lua doubles; both and their
 * products must stay below 2^53 for that to be exact. Real requests are many orders of magnitude
 * below the bound, so meeting it is a corrupt usage report, not a price to round.
 */
function assertExact(charge: Charge): void {
  for (const kind of TOKEN_KINDS) {
    const tokens = charge.counts[kind];
    if (!Number.isSafeInteger(tokens) || tokens < 0) {
      throw new GatewayError('internal_error', `Token count ${kind}=${tokens} is not billable.`);
    }
    if (!Number.isSafeInteger(tokens * charge.prices[kind])) {
      throw new GatewayError('internal_error', `Token count ${kind}=${tokens} is too large.`);
    }
  }
}
