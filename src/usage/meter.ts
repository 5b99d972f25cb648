import type { TokenCounts } from '../money/cost.js';
import { tokensForChars } from './estimate.js';

/** What the relay does with one event of a metered stream. */
export type EventAction =
  /** Send it to the client now. */
  | { kind: 'forward' }
  /** Never send it: the gateway asked for it, the client did not. */
  | { kind: 'drop' }
  /** Send these bytes instead. */
  | { kind: 'replace'; bytes: Buffer }
  /** Send it only after the request is settled: it ends the response. */
  | { kind: 'hold' };

export const FORWARD: EventAction = { kind: 'forward' };
export const DROP: EventAction = { kind: 'drop' };
export const HOLD: EventAction = { kind: 'hold' };

/** Reads a stream's events as they pass and keeps what billing needs. */
export interface StreamMeter {
  inspect(raw: Buffer): EventAction;
  /** The counts the upstream reported, once it has. */
  reported(): TokenCounts | undefined;
  /** Characters of generated text seen, for an estimate when no usage arrives. */
  outputChars(): number;
}

export interface MeteredUsage {
  counts: TokenCounts;
  estimated: boolean;
}

/**
 * The counts to bill: the upstream's own when it reported them, otherwise an estimate from the
 * request body's size and the text that came back.
 */
export function usageOrEstimate(
  reported: TokenCounts | undefined,
  requestChars: number,
  outputChars: number,
): MeteredUsage {
  if (reported) return { counts: reported, estimated: false };
  return {
    counts: {
      uncached_input: tokensForChars(requestChars),
      cached_input: 0,
      output: tokensForChars(outputChars),
    },
    estimated: true,
  };
}

/** A non-negative integer from a usage field, or 0. */
export function count(value: unknown): number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : 0;
}
