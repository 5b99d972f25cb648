import type { TokenCounts } from '../money/cost.js';
import { generatedChars, textChars } from './estimate.js';
import { count, DROP, type EventAction, FORWARD, HOLD, type StreamMeter } from './meter.js';
import { parseSseEvent } from './sse.js';

type Json = Record<string, unknown>;

const USAGE_OBJECT = /"usage"\s*:\s*\{/;

/**
 * Chat Completions usage: uncached = prompt_tokens − cached, where cached is
 * `prompt_tokens_details.cached_tokens`, or DeepSeek's `prompt_cache_hit_tokens`.
 */
export function chatUsage(usage: unknown): TokenCounts | undefined {
  if (!usage || typeof usage !== 'object') return undefined;
  const u = usage as Json;
  const details = (u.prompt_tokens_details ?? {}) as Json;
  const cached = count(details.cached_tokens ?? u.prompt_cache_hit_tokens);
  const prompt =
    u.prompt_tokens === undefined
      ? count(u.prompt_cache_miss_tokens) + cached
      : count(u.prompt_tokens);
  return {
    uncached_input: Math.max(prompt - cached, 0),
    cached_input: cached,
    output: count(u.completion_tokens),
  };
}

/** Responses usage: `input_tokens` includes the cached ones. */
export function responsesUsage(usage: unknown): TokenCounts | undefined {
  if (!usage || typeof usage !== 'object') return undefined;
  const u = usage as Json;
  const cached = count(((u.input_tokens_details ?? {}) as Json).cached_tokens);
  return {
    uncached_input: Math.max(count(u.input_tokens) - cached, 0),
    cached_input: cached,
    output: count(u.output_tokens),
  };
}

/**
 * Meters a Chat Completions stream. Usage arrives in a chunk of its own when
 * `stream_options.include_usage` is set; when the gateway set it for a client that did not,
 * that chunk is removed again. `data: [DONE]` ends the stream and is held until settlement.
 */
export class ChatStreamMeter implements StreamMeter {
  readonly #stripUsage: boolean;
  #usage: TokenCounts | undefined;
  #chars = 0;

  constructor(stripUsage: boolean) {
    this.#stripUsage = stripUsage;
  }

  inspect(raw: Buffer): EventAction {
    const { data } = parseSseEvent(raw);
    if (data === '[DONE]') return HOLD;

    // Most events carry a few characters of text and no usage: they are scanned, not parsed.
    this.#chars += generatedChars(data);
    if (!USAGE_OBJECT.test(data)) return FORWARD;
    const chunk = parseJson(data);
    if (!chunk) return FORWARD;

    this.#usage = chatUsage(chunk.usage);
    if (!this.#stripUsage) return FORWARD;

    const choices = chunk.choices;
    if (!Array.isArray(choices) || choices.length === 0) return DROP;
    const { usage: _usage, ...rest } = chunk;
    return { kind: 'replace', bytes: Buffer.from(`data: ${JSON.stringify(rest)}\n\n`) };
  }

  reported(): TokenCounts | undefined {
    return this.#usage;
  }

  outputChars(): number {
    return this.#chars;
  }
}

const RESPONSE_TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed']);

/** Meters a Responses stream: usage is in the final `response.completed` event, held back. */
export class ResponsesStreamMeter implements StreamMeter {
  #usage: TokenCounts | undefined;
  #chars = 0;

  inspect(raw: Buffer): EventAction {
    const event = parseSseEvent(raw);
    const body = parseJson(event.data);
    const type = typeof body?.type === 'string' ? body.type : event.type;

    if (RESPONSE_TERMINAL.has(type)) {
      this.#usage = responsesUsage((body?.response as Json | undefined)?.usage);
      return HOLD;
    }
    if (type.endsWith('.delta')) this.#chars += textChars({ delta: body?.delta });
    return FORWARD;
  }

  reported(): TokenCounts | undefined {
    return this.#usage;
  }

  outputChars(): number {
    return this.#chars;
  }
}

export function parseJson(text: string): Json | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' ? (value as Json) : undefined;
  } catch {
    return undefined;
  }
}
