import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { announceListening, envInteger, isMainModule } from './child.js';

/**
 * A fast fake LongCat upstream for the bench: OpenAI chat completions, plain and streamed, with
 * usage. It runs in its own process (plain node:http, no framework) so that its CPU time is not
 * charged to the proxy in front of it.
 */
export interface FakeUpstreamOptions {
  /** The key a caller must present; undefined accepts any. */
  apiKey: string | undefined;
  /** Content events per streamed answer; also the completion token count. */
  chunks: number;
  /** Pause between streamed events, so a client can abort in the middle of a stream. */
  chunkDelayMs: number;
}

/** What the upstream did, read by the soak through `GET /__bench/counts`. */
export interface UpstreamCounts {
  /** Chat requests answered with status 200: each of these must be billed exactly once. */
  served: number;
  /** Of those, how many were written to the end. */
  completed: number;
  /** Of those, how many the caller hung up on before the end. */
  callerGone: number;
  /** Requests refused with 4xx (bad key, bad JSON, unknown route). */
  refused: number;
}

const CHAT_PATH = '/openai/v1/chat/completions';
const COUNTS_PATH = '/__bench/counts';
const MAX_BODY_BYTES = 1024 * 1024;

interface ChatRequest {
  model: string;
  stream: boolean;
  includeUsage: boolean;
  promptTokens: number;
  maxTokens: number | undefined;
}

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

export function createFakeUpstream(options: FakeUpstreamOptions): {
  server: Server;
  counts: UpstreamCounts;
} {
  const counts: UpstreamCounts = { served: 0, completed: 0, callerGone: 0, refused: 0 };
  let sequence = 0;

  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === COUNTS_PATH) {
      sendJson(res, 200, counts);
      return;
    }
    if (req.method !== 'POST' || req.url !== CHAT_PATH) {
      counts.refused += 1;
      sendError(res, 404, 'not_found', `no route for ${req.method} ${req.url}`);
      return;
    }
    if (options.apiKey !== undefined && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      counts.refused += 1;
      sendError(res, 401, 'invalid_api_key', 'Incorrect API key provided.');
      return;
    }

    readBody(req).then(
      (body) => {
        const chat = parseChatRequest(body);
        if (chat === undefined) {
          counts.refused += 1;
          sendError(res, 400, 'invalid_request', 'body is not a chat completion request');
          return;
        }
        sequence += 1;
        answerChat(res, chat, `chatcmpl-bench-${process.pid}-${sequence}`, options, counts);
      },
      () => {
        counts.refused += 1;
        sendError(res, 413, 'request_too_large', 'body too large');
      },
    );
  });

  // Keep-alive well past the proxies' own idle timeouts, so they never race a closing socket.
  server.keepAliveTimeout = 65_000;
  return { server, counts };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((done, fail) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (part: Buffer) => {
      size += part.length;
      if (size > MAX_BODY_BYTES) {
        req.destroy();
        fail(new Error('body too large'));
        return;
      }
      parts.push(part);
    });
    req.on('end', () => done(Buffer.concat(parts)));
    req.on('error', fail);
  });
}

/** Parses the request the way a real upstream must: a body that is not JSON gets a 400. */
function parseChatRequest(body: Buffer): ChatRequest | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;

  const fields = parsed as Record<string, unknown>;
  if (typeof fields.model !== 'string' || !Array.isArray(fields.messages)) return undefined;

  const streamOptions = fields.stream_options as { include_usage?: unknown } | undefined;
  return {
    model: fields.model,
    stream: fields.stream === true,
    includeUsage: streamOptions?.include_usage === true,
    promptTokens: countPromptTokens(fields.messages),
    maxTokens: typeof fields.max_tokens === 'number' ? fields.max_tokens : undefined,
  };
}

/** About four characters a token, plus a few per message for the chat template. */
function countPromptTokens(messages: unknown[]): number {
  let characters = 0;
  for (const message of messages) {
    const content = (message as { content?: unknown } | null)?.content;
    if (typeof content === 'string') characters += content.length;
  }
  return messages.length * 4 + Math.ceil(characters / 4);
}

function usageFor(chat: ChatRequest, completionTokens: number): Usage {
  // Half the prompt counts as a cache hit, so the gateway's cached-input price is exercised.
  const cached = Math.floor(chat.promptTokens / 2);
  return {
    prompt_tokens: chat.promptTokens,
    completion_tokens: completionTokens,
    total_tokens: chat.promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: cached },
  };
}

function answerChat(
  res: ServerResponse,
  chat: ChatRequest,
  id: string,
  options: FakeUpstreamOptions,
  counts: UpstreamCounts,
): void {
  counts.served += 1;
  res.once('close', () => {
    if (res.writableFinished) counts.completed += 1;
    else counts.callerGone += 1;
  });

  const tokens = Math.max(1, Math.min(options.chunks, chat.maxTokens ?? options.chunks));
  if (chat.stream) streamChat(res, chat, id, tokens, options.chunkDelayMs);
  else sendJson(res, 200, completion(chat, id, tokens));
}

function completion(chat: ChatRequest, id: string, tokens: number): unknown {
  return {
    id,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: chat.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: 'tok '.repeat(tokens).trimEnd() },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: usageFor(chat, tokens),
  };
}

/**
 * Writes the answer as server-sent events, one `write` per event, as LongCat does: content
 * chunks, the usage chunk (`choices: []`) only when the caller asked for it, then `[DONE]`.
 */
function streamChat(
  res: ServerResponse,
  chat: ChatRequest,
  id: string,
  tokens: number,
  delayMs: number,
): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
  });

  const events = streamEvents(chat, id, tokens);
  let next = 0;
  const writeNext = (): void => {
    while (next < events.length && !res.destroyed) {
      res.write(events[next]);
      next += 1;
      if (delayMs > 0 && next < events.length) {
        setTimeout(writeNext, delayMs);
        return;
      }
    }
    if (!res.destroyed) res.end();
  };
  writeNext();
}

function streamEvents(chat: ChatRequest, id: string, tokens: number): string[] {
  const head = `{"id":"${id}","object":"chat.completion.chunk","created":${Math.floor(
    Date.now() / 1000,
  )},"model":${JSON.stringify(chat.model)}`;
  // With include_usage, OpenAI puts `"usage":null` on every chunk but the last.
  const usageNull = chat.includeUsage ? ',"usage":null' : '';

  const events: string[] = [];
  for (let i = 0; i < tokens; i += 1) {
    const delta = i === 0 ? '{"role":"assistant","content":"tok "}' : '{"content":"tok "}';
    const finish = i === tokens - 1 ? '"stop"' : 'null';
    const choice = `{"index":0,"delta":${delta},"finish_reason":${finish}}`;
    events.push(`data: ${head},"choices":[${choice}]${usageNull}}\n\n`);
  }
  if (chat.includeUsage) {
    events.push(
      `data: ${head},"choices":[],"usage":${JSON.stringify(usageFor(chat, tokens))}}\n\n`,
    );
  }
  events.push('data: [DONE]\n\n');
  return events;
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  sendJson(res, status, { error: { message, type: 'invalid_request_error', code, param: null } });
}

function main(): void {
  const { server } = createFakeUpstream({
    apiKey: process.env.UPSTREAM_API_KEY || undefined,
    chunks: envInteger('STREAM_CHUNKS', 10),
    chunkDelayMs: envInteger('CHUNK_DELAY_MS', 0),
  });
  server.listen(envInteger('PORT', 0), '127.0.0.1', () => announceListening(server));
}

if (isMainModule(import.meta.url)) main();
