import type { TokenCounts } from '../money/cost.js';
import { AnthropicStreamMeter, anthropicUsage } from '../usage/anthropic.js';
import { textChars } from '../usage/estimate.js';
import type { StreamMeter } from '../usage/meter.js';
import {
  ChatStreamMeter,
  chatUsage,
  ResponsesStreamMeter,
  responsesUsage,
} from '../usage/openai.js';

export type Json = Record<string, unknown>;

/**
 * What differs between the metered APIs: where the request goes upstream, what a valid body
 * looks like, where the usage is, and how errors are shaped for its clients.
 */
export interface ApiFormat {
  /** Route label for metrics and logs. */
  route: 'chat_completions' | 'responses' | 'messages';
  family: 'openai' | 'anthropic';
  upstreamPath: string;
  /** Why the body is not a request of this API, or `undefined` when it is. */
  problem(body: Json): string | undefined;
  maxOutputTokens(body: Json): number | undefined;
  /**
   * Makes a streamed request ask the upstream for usage. Returns true when the body was changed,
   * so that the usage the client did not ask for is removed from what it receives.
   */
  requestUsage(body: Json): boolean;
  usage(response: Json): TokenCounts | undefined;
  streamMeter(stripUsage: boolean): StreamMeter;
}

function positiveInteger(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

function modelProblem(body: Json): string | undefined {
  return typeof body.model === 'string' && body.model.length > 0
    ? undefined
    : '`model` must be a non-empty string.';
}

export const CHAT_COMPLETIONS: ApiFormat = {
  route: 'chat_completions',
  family: 'openai',
  upstreamPath: '/v1/chat/completions',
  problem(body) {
    if (!Array.isArray(body.messages)) return '`messages` must be an array.';
    return modelProblem(body);
  },
  maxOutputTokens: (body) =>
    positiveInteger(body.max_completion_tokens) ?? positiveInteger(body.max_tokens),
  requestUsage(body) {
    const options = (body.stream_options ?? {}) as Json;
    if (options.include_usage === true) return false;
    body.stream_options = { ...options, include_usage: true };
    return true;
  },
  usage: (response) => chatUsage(response.usage),
  streamMeter: (stripUsage) => new ChatStreamMeter(stripUsage),
};

export const RESPONSES: ApiFormat = {
  route: 'responses',
  family: 'openai',
  upstreamPath: '/v1/responses',
  problem(body) {
    const input = body.input;
    if (input !== undefined && typeof input !== 'string' && !Array.isArray(input)) {
      return '`input` must be a string or an array.';
    }
    return modelProblem(body);
  },
  maxOutputTokens: (body) => positiveInteger(body.max_output_tokens),
  requestUsage: () => false,
  usage: (response) => responsesUsage(response.usage),
  streamMeter: () => new ResponsesStreamMeter(),
};

export const ANTHROPIC_MESSAGES: ApiFormat = {
  route: 'messages',
  family: 'anthropic',
  upstreamPath: '/v1/messages',
  problem(body) {
    if (!Array.isArray(body.messages)) return '`messages` must be an array.';
    if (positiveInteger(body.max_tokens) === undefined) {
      return '`max_tokens` must be a positive integer.';
    }
    return modelProblem(body);
  },
  maxOutputTokens: (body) => positiveInteger(body.max_tokens),
  // Anthropic streams always carry usage, in `message_start` and `message_delta`.
  requestUsage: () => false,
  usage: (response) => anthropicUsage(response.usage),
  streamMeter: () => new AnthropicStreamMeter(),
};

/** Characters of generated text in a plain response, for an estimate. */
export function responseTextChars(format: ApiFormat, response: Json): number {
  if (format.route === 'chat_completions') return textChars(response.choices);
  return textChars(format.route === 'responses' ? response.output : response.content);
}
