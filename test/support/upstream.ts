import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeUsage {
  /** All input tokens, cached ones included. */
  input: number;
  cached: number;
  output: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown> | undefined;
}

type Responder = (request: RecordedRequest, response: ServerResponse) => void | Promise<void>;

const TEXT = ['Hello', ' from', ' the', ' fake', ' LongCat', ' upstream', '.'];

/**
 * A stand-in for LongCat on loopback: answers the OpenAI chat, Responses and model-list routes
 * and the Anthropic messages route, plain or streamed, with the usage a test sets. A test can
 * replace the answer for one scenario with `respondWith`.
 */
export class FakeUpstream {
  usage: FakeUsage = { input: 1000, cached: 0, output: 500 };
  /** When false, 200 answers carry no usage at all. */
  sendUsage = true;
  /** Pause between streamed events, in ms. */
  eventGapMs = 0;
  readonly requests: RecordedRequest[] = [];
  served = 0;
  #responder: Responder | undefined;
  #server: Server | undefined;
  url = '';

  async start(): Promise<this> {
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.keepAliveTimeout = 60_000;
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise((resolve) => this.#server?.close(resolve));
  }

  respondWith(responder: Responder | undefined): void {
    this.#responder = responder;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const recorded: RecordedRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined,
    };
    this.requests.push(recorded);

    if (this.#responder) {
      await this.#responder(recorded, res);
      return;
    }
    this.served += 1;
    await this.#answer(recorded, res);
  }

  async #answer(request: RecordedRequest, res: ServerResponse): Promise<void> {
    const stream = request.body?.stream === true;
    if (request.path.endsWith('/v1/models')) return json(res, 200, modelList());
    if (request.path.endsWith('/v1/chat/completions')) {
      return stream ? this.#chatStream(request, res) : json(res, 200, this.#chat());
    }
    if (request.path.endsWith('/v1/responses')) {
      return stream ? this.#responsesStream(res) : json(res, 200, this.#responses());
    }
    if (request.path.endsWith('/v1/messages')) {
      return stream ? this.#messagesStream(res) : json(res, 200, this.#message());
    }
    json(res, 404, { error: { message: 'no such route', type: 'invalid_request_error' } });
  }

  chatUsage() {
    const { input, cached, output } = this.usage;
    return {
      prompt_tokens: input,
      completion_tokens: output,
      total_tokens: input + output,
      prompt_tokens_details: { cached_tokens: cached },
    };
  }

  #chat() {
    return {
      id: 'chatcmpl-fake',
      object: 'chat.completion',
      created: 1_767_225_600,
      model: 'LongCat-2.0',
      choices: [
        { index: 0, message: { role: 'assistant', content: TEXT.join('') }, finish_reason: 'stop' },
      ],
      ...(this.sendUsage ? { usage: this.chatUsage() } : {}),
    };
  }

  async #chatStream(request: RecordedRequest, res: ServerResponse): Promise<void> {
    sseHead(res);
    const base = {
      id: 'chatcmpl-fake',
      object: 'chat.completion.chunk',
      created: 1,
      model: 'LongCat-2.0',
    };
    for (const [i, piece] of TEXT.entries()) {
      const delta = i === 0 ? { role: 'assistant', content: piece } : { content: piece };
      await this.#send(
        res,
        `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`,
      );
    }
    await this.#send(
      res,
      `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`,
    );
    const options = (request.body?.stream_options ?? {}) as { include_usage?: boolean };
    if (this.sendUsage && options.include_usage) {
      await this.#send(
        res,
        `data: ${JSON.stringify({ ...base, choices: [], usage: this.chatUsage() })}\n\n`,
      );
    }
    res.end('data: [DONE]\n\n');
  }

  responsesUsage() {
    const { input, cached, output } = this.usage;
    return {
      input_tokens: input,
      input_tokens_details: { cached_tokens: cached },
      output_tokens: output,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: input + output,
    };
  }

  #responses() {
    return {
      id: 'resp_fake',
      object: 'response',
      created_at: 1,
      status: 'completed',
      model: 'LongCat-2.0',
      output: [
        {
          type: 'message',
          id: 'msg_fake',
          status: 'completed',
          role: 'assistant',
          content: [{ type: 'output_text', text: TEXT.join(''), annotations: [] }],
        },
      ],
      ...(this.sendUsage ? { usage: this.responsesUsage() } : {}),
    };
  }

  async #responsesStream(res: ServerResponse): Promise<void> {
    sseHead(res);
    const event = (type: string, data: Record<string, unknown>) =>
      this.#send(res, `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
    const created = { ...this.#responses(), status: 'in_progress', output: [] };
    delete (created as { usage?: unknown }).usage;
    await event('response.created', { response: created });
    for (const piece of TEXT) {
      await event('response.output_text.delta', {
        item_id: 'msg_fake',
        output_index: 0,
        content_index: 0,
        delta: piece,
      });
    }
    await event('response.completed', { response: this.#responses() });
    res.end();
  }

  anthropicUsage() {
    const { input, cached, output } = this.usage;
    return {
      input_tokens: input - cached,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: cached,
      output_tokens: output,
    };
  }

  #message() {
    return {
      id: 'msg_fake',
      type: 'message',
      role: 'assistant',
      model: 'LongCat-2.0',
      content: [{ type: 'text', text: TEXT.join('') }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      ...(this.sendUsage ? { usage: this.anthropicUsage() } : {}),
    };
  }

  async #messagesStream(res: ServerResponse): Promise<void> {
    sseHead(res);
    const event = (type: string, data: Record<string, unknown>) =>
      this.#send(res, `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
    const usage = this.anthropicUsage();
    const startUsage = this.sendUsage ? { ...usage, output_tokens: 1 } : undefined;
    await event('message_start', {
      message: { ...this.#message(), content: [], stop_reason: null, usage: startUsage },
    });
    await event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
    for (const piece of TEXT) {
      await event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: piece } });
    }
    await event('content_block_stop', { index: 0 });
    await event('message_delta', {
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      ...(this.sendUsage ? { usage: { output_tokens: usage.output_tokens } } : {}),
    });
    await event('message_stop', {});
    res.end();
  }

  async #send(res: ServerResponse, text: string): Promise<void> {
    if (this.eventGapMs > 0) await new Promise((r) => setTimeout(r, this.eventGapMs));
    if (!res.destroyed) res.write(text);
  }
}

function sseHead(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function modelList() {
  return {
    object: 'list',
    data: [{ id: 'LongCat-2.0', object: 'model', created: 1, owned_by: 'longcat' }],
  };
}
