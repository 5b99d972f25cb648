import { Big } from 'big.js';

/** One US dollar in the gateway's unit of account. Every stored amount is integer nano-dollars. */
export const NANO_PER_USD = 1_000_000_000n;

const USD_AMOUNT = /^-?(0|[1-9]\d*)(\.\d{1,9})?$/;

/** The largest amount an operator may move in one call: keeps every balance inside Redis' int64. */
export const MAX_AMOUNT_NANO = 1_000_000_000n * NANO_PER_USD;

/**
 * Parses a decimal USD string such as `"9.2176"` into nano-dollars.
 * Returns `undefined` for anything that is not an exact decimal with at most nine fractional
 * digits, so that a caller can refuse the input instead of rounding it.
 *
 * @example parseUsd('0.7824') // 782400000n
 */
export function parseUsd(text: string): bigint | undefined {
  if (!USD_AMOUNT.test(text)) return undefined;

  const negative = text.startsWith('-');
  const [whole = '0', fraction = ''] = (negative ? text.slice(1) : text).split('.');
  const nano = BigInt(whole) * NANO_PER_USD + BigInt(fraction.padEnd(9, '0'));
  return negative ? -nano : nano;
}

/**
 * Formats nano-dollars as the contract's money string: exact, no trailing zeros, no exponent.
 *
 * @example formatUsd(782400000n) // '0.7824'
 */
export function formatUsd(nano: bigint | string): string {
  const value = typeof nano === 'bigint' ? nano : BigInt(nano);
  const negative = value < 0n;
  const magnitude = negative ? -value : value;
  const whole = magnitude / NANO_PER_USD;
  const fraction = (magnitude % NANO_PER_USD).toString().padStart(9, '0').replace(/0+$/, '');
  const text = fraction ? `${whole}.${fraction}` : `${whole}`;
  return negative ? `-${text}` : text;
}

/** Sums decimal USD strings exactly, for reports and tests that add amounts they were given. */
export function sumUsd(amounts: Iterable<string>): string {
  let total = new Big(0);
  for (const amount of amounts) total = total.plus(amount);
  return total.toFixed();
}
