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
  /**
   * Input counts the upstream reported before the stream broke, where the format sends them
   * ahead of the output (Anthropic's `message_start`); an estimate then counts only the output.
   */
  reportedInput?(): InputCounts | undefined;
}

export type InputCounts = Pick<TokenCounts, 'uncached_input' | 'cached_input'>;

export interface MeteredUsage {
  counts: TokenCounts;
  estimated: boolean;
}

/**
 * The counts to bill: the upstream's own when it reported them, otherwise an estimate from the
 * text that came back and, unless the upstream already gave the input counts, the request
 * body's size.
 */
export function usageOrEstimate(
  reported: TokenCounts | undefined,
  requestChars: number,
  outputChars: number,
  reportedInput?: InputCounts,
): MeteredUsage {
  if (reported) return { counts: reported, estimated: false };
  const input = reportedInput ?? { uncached_input: tokensForChars(requestChars), cached_input: 0 };
  return { counts: { ...input, output: tokensForChars(outputChars) }, estimated: true };
}

/** A non-negative integer from a usage field, or 0. */
export function count(value: unknown): number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : 0;
}
