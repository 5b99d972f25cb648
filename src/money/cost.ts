import { type PicoPerToken, TOKEN_KINDS, type TokenKind } from './prices.js';

export type TokenCounts = Record<TokenKind, number>;

const PICO_PER_NANO = 1000n;

/**
 * Nano-dollars for `tokens` of one kind: tokens × pico-dollars per token, with a sub-nano
 * remainder rounded half up. The settle script applies the same rule, kind by kind; a request's
 * cost is the sum of its kinds. With the built-in prices every kind is a whole number of
 * nano-dollars and nothing is rounded.
 */
export function kindCostNano(tokens: number, picoPerToken: number): bigint {
  const pico = BigInt(tokens) * BigInt(picoPerToken);
  return (pico + PICO_PER_NANO / 2n) / PICO_PER_NANO;
}

/** The cost of a request with no token pack involved, in nano-dollars. */
export function costNano(counts: TokenCounts, prices: PicoPerToken): bigint {
  let total = 0n;
  for (const kind of TOKEN_KINDS) total += kindCostNano(counts[kind], prices[kind]);
  return total;
}
