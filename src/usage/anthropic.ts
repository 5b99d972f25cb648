import type { TokenCounts } from '../money/cost.js';
import { textChars } from './estimate.js';
import {
  count,
  type EventAction,
  FORWARD,
  HOLD,
  type InputCounts,
  type StreamMeter,
} from './meter.js';
import { parseJson } from './openai.js';
import { parseSseEvent } from './sse.js';

type Json = Record<string, unknown>;

/**
 * Anthropic Messages usage. `input_tokens` excludes the cache: tokens written to the cache
 * (`cache_creation_input_tokens`) are billed as uncached input, and tokens read from it
 * (`cache_read_input_tokens`) as cached input.
 */
export function anthropicUsage(usage: unknown): TokenCounts | undefined {
  if (!usage || typeof usage !== 'object') return undefined;
  const u = usage as Json;
  return {
    uncached_input: count(u.input_tokens) + count(u.cache_creation_input_tokens),
    cached_input: count(u.cache_read_input_tokens),
    output: count(u.output_tokens),
  };
}

/**
 * Meters an Anthropic Messages stream. The input counts arrive in `message_start`; each
 * `message_delta` carries the cumulative counts so far, at least `output_tokens`, so the last one
 * is final. `message_stop` ends the stream and is held until settlement.
 *
 * Usage counts as reported only once a `message_delta` has given the output count: the count in
 * `message_start` is a placeholder, so a stream that breaks before a `message_delta` is billed by
 * counting instead.
 */
export class AnthropicStreamMeter implements StreamMeter {
  /** The usage fields seen so far, later events overriding earlier ones field by field. */
  readonly #fields: Json = {};
  #outputFinal = false;
  #chars = 0;

  inspect(raw: Buffer): EventAction {
    const event = parseSseEvent(raw);
    const body = parseJson(event.data);
    const type = typeof body?.type === 'string' ? body.type : event.type;

    switch (type) {
      case 'message_start':
        this.#merge((body?.message as Json | undefined)?.usage);
        return FORWARD;
      case 'message_delta':
        if (this.#merge(body?.usage)) this.#outputFinal = true;
        return FORWARD;
      case 'content_block_delta':
        this.#chars += textChars(body?.delta);
        return FORWARD;
      case 'message_stop':
        return HOLD;
      default:
        return FORWARD;
    }
  }

  reported(): TokenCounts | undefined {
    return this.#outputFinal ? anthropicUsage(this.#fields) : undefined;
  }

  reportedInput(): InputCounts | undefined {
    if (typeof this.#fields.input_tokens !== 'number') return undefined;
    const { uncached_input, cached_input } = anthropicUsage(this.#fields) as TokenCounts;
    return { uncached_input, cached_input };
  }

  outputChars(): number {
    return this.#chars;
  }

  /** Keeps the numeric usage fields (some are null in a delta); true when an output count came. */
  #merge(usage: unknown): boolean {
    if (!usage || typeof usage !== 'object') return false;
    for (const [field, value] of Object.entries(usage)) {
      if (typeof value === 'number') this.#fields[field] = value;
    }
    return typeof (usage as Json).output_tokens === 'number';
  }
}
