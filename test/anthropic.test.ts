import type { ServerResponse } from 'node:http';
import {
  Anthropic,
  AuthenticationError,
  BadRequestError,
  NotFoundError,
  PaymentRequiredError,
} from '@anthropic-ai/sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { AnthropicStreamMeter } from '../src/usage/anthropic.js';
import { HOLD } from '../src/usage/meter.js';
import { accountOf, usageOf } from './support/gateway.js';
import { useStack } from './support/stack.js';
import { json } from './support/upstream.js';

const MODEL = 'LongCat-2.0';
const OPERATOR_KEY = 'sk-operator-upstream';
const HELLO = {
  model: MODEL,
  max_tokens: 1024,
  messages: [{ role: 'user' as const, content: 'Hi' }],
};

const stack = useStack();

afterEach(() => {
  stack.upstream.respondWith(undefined);
  stack.upstream.usage = { input: 1000, cached: 0, output: 500 };
});

/** An SDK client pointed at the stack.gateway exactly as the contract says: base URL `/anthropic`. */
function sdk(key: string, auth: 'x-api-key' | 'bearer' = 'x-api-key'): Anthropic {
  const baseURL = `${stack.gateway.publicUrl}/anthropic`;
  return auth === 'bearer'
    ? new Anthropic({ authToken: key, baseURL, maxRetries: 0 })
    : new Anthropic({ apiKey: key, baseURL, maxRetries: 0 });
}

/** The rejection of `promise`, which must reject. */
async function refusal(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected the request to be refused');
    },
    (error: unknown) => error,
  );
}

/** An Anthropic event stream written by hand, for usage shapes the fake does not produce. */
function sse(res: ServerResponse, events: Record<string, unknown>[]): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  for (const event of events) res.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
  res.end();
}

describe('POST /anthropic/v1/messages: billing', () => {
  it('bills a plain message exactly, cache reads at the cached price', async () => {
    const key = await stack.gateway.account('anth-plain', '10');
    stack.upstream.usage = { input: 1_000_000, cached: 400_000, output: 500_000 };

    const message = await sdk(key).messages.create(HELLO);

    expect(message.content).toEqual([
      { type: 'text', text: 'Hello from the fake LongCat upstream.' },
    ]);
    expect(message.usage.cache_read_input_tokens).toBe(400_000);
    const [record, ...others] = await usageOf(stack.gateway, 'anth-plain');
    expect(others).toEqual([]);
    // 600,000 × $0.30 + 400,000 × $0.006 + 500,000 × $1.20, per million: the page's example.
    expect(record).toMatchObject({
      model: MODEL,
      uncached_input_tokens: 600_000,
      cached_input_tokens: 400_000,
      output_tokens: 500_000,
      cost: '0.7824',
      estimated: false,
    });
    expect((await accountOf(stack.gateway, 'anth-plain')).balance).toBe('9.2176');
  });

  it('bills a streamed message from message_start and the last message_delta', async () => {
    const key = await stack.gateway.account('anth-stream', '10');
    stack.upstream.usage = { input: 250_000, cached: 50_000, output: 125_000 };

    const stream = await sdk(key).messages.create({ ...HELLO, stream: true });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);

    expect(types[0]).toBe('message_start');
    expect(types.at(-1)).toBe('message_stop');
    // The stop event is released only after settlement, so the charge is already visible.
    const records = await usageOf(stack.gateway, 'anth-stream');
    // 200,000 × $0.30 + 50,000 × $0.006 + 125,000 × $1.20, per million = 0.06 + 0.0003 + 0.15.
    expect(records).toMatchObject([
      {
        uncached_input_tokens: 200_000,
        cached_input_tokens: 50_000,
        output_tokens: 125_000,
        cost: '0.2103',
        estimated: false,
      },
    ]);
    expect((await accountOf(stack.gateway, 'anth-stream')).balance).toBe('9.7897');
  });

  it('bills a stream read through the SDK helper to its final message', async () => {
    const key = await stack.gateway.account('anth-helper', '10');
    stack.upstream.usage = { input: 10_000, cached: 0, output: 1_000 };

    const final = await sdk(key).messages.stream(HELLO).finalMessage();

    expect(final.usage.output_tokens).toBe(1_000);
    // 10,000 × $0.30 + 1,000 × $1.20, per million.
    expect((await usageOf(stack.gateway, 'anth-helper'))[0]?.cost).toBe('0.0042');
  });

  it('bills cache writes in a plain message as uncached input', async () => {
    const key = await stack.gateway.account('anth-cache-write', '10');
    stack.upstream.respondWith((_req, res) =>
      json(res, 200, {
        id: 'msg_cache',
        type: 'message',
        role: 'assistant',
        model: MODEL,
        content: [{ type: 'text', text: 'cached' }],
        stop_reason: 'end_turn',
        stop_sequence: null,
        usage: {
          input_tokens: 1_000,
          cache_creation_input_tokens: 9_000,
          cache_read_input_tokens: 20_000,
          output_tokens: 2_000,
        },
      }),
    );

    await sdk(key).messages.create(HELLO);

    // (1,000 + 9,000) × $0.30 + 20,000 × $0.006 + 2,000 × $1.20, per million.
    expect(await usageOf(stack.gateway, 'anth-cache-write')).toMatchObject([
      {
        uncached_input_tokens: 10_000,
        cached_input_tokens: 20_000,
        output_tokens: 2_000,
        cost: '0.00552',
      },
    ]);
  });

  it('bills cache writes in a stream, reading cumulative counts from message_delta', async () => {
    const key = await stack.gateway.account('anth-cache-stream', '10');
    const start = { input_tokens: 500, cache_creation_input_tokens: 1_500, output_tokens: 1 };
    stack.upstream.respondWith((_req, res) =>
      sse(res, [
        {
          type: 'message_start',
          message: {
            id: 'msg_s',
            type: 'message',
            role: 'assistant',
            model: MODEL,
            content: [],
            usage: { ...start, cache_read_input_tokens: 0 },
          },
        },
        { type: 'ping' },
        { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
        { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'ok' } },
        { type: 'content_block_stop', index: 0 },
        { type: 'message_delta', delta: { stop_reason: null }, usage: { output_tokens: 1_200 } },
        {
          type: 'message_delta',
          delta: { stop_reason: 'end_turn', stop_sequence: null },
          usage: { ...start, cache_read_input_tokens: null, output_tokens: 3_000 },
        },
        { type: 'message_stop' },
      ]),
    );

    const stream = await sdk(key).messages.create({ ...HELLO, stream: true });
    for await (const _event of stream);

    // (500 + 1,500) × $0.30 + 3,000 × $1.20, per million; the last message_delta is final.
    expect(await usageOf(stack.gateway, 'anth-cache-stream')).toMatchObject([
      {
        uncached_input_tokens: 2_000,
        cached_input_tokens: 0,
        output_tokens: 3_000,
        cost: '0.0042',
      },
    ]);
  });

  it('forwards the operator key, never the client key, and the anthropic-* headers', async () => {
    const key = await stack.gateway.account('anth-headers', '10');

    await sdk(key).messages.create(HELLO, {
      headers: { 'anthropic-version': '2023-06-01', 'anthropic-beta': 'prompt-caching-2024-07-31' },
    });

    const sent = stack.upstream.requests.at(-1);
    expect(sent?.path).toBe('/anthropic/v1/messages');
    expect(sent?.headers['x-api-key']).toBe(OPERATOR_KEY);
    expect(sent?.headers.authorization).toBe(`Bearer ${OPERATOR_KEY}`);
    expect(sent?.headers['anthropic-version']).toBe('2023-06-01');
    expect(sent?.headers['anthropic-beta']).toBe('prompt-caching-2024-07-31');
    expect(JSON.stringify(sent?.headers)).not.toContain(key);
  });

  it('accepts the key as Authorization: Bearer as well as x-api-key', async () => {
    const key = await stack.gateway.account('anth-bearer', '10');

    const message = await sdk(key, 'bearer').messages.create(HELLO);

    expect(message.type).toBe('message');
    expect(await usageOf(stack.gateway, 'anth-bearer')).toHaveLength(1);
  });
});

describe('POST /anthropic/v1/messages: refusals in the Anthropic error shape', () => {
  it('refuses an unknown key with 401 invalid_api_key', async () => {
    const before = stack.upstream.requests.length;

    const error = await refusal(sdk('lcgw.nobody.c2VjcmV0').messages.create(HELLO));

    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error).toMatchObject({
      status: 401,
      error: { type: 'error', error: { type: 'invalid_api_key' } },
    });
    expect(stack.upstream.requests.length).toBe(before);
  });

  it('refuses a revoked key with 401 invalid_api_key', async () => {
    await stack.gateway.admin('POST', '/admin/accounts', { id: 'anth-revoked' });
    const { body } = await stack.gateway.admin<{ id: string; key: string }>(
      'POST',
      '/admin/accounts/anth-revoked/keys',
    );
    await stack.gateway.admin('DELETE', `/admin/keys/${body.id}`);

    const error = await refusal(sdk(body.key).messages.create(HELLO));

    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error).toMatchObject({ status: 401, error: { error: { type: 'invalid_api_key' } } });
  });

  it('refuses an account with nothing to spend with 402 insufficient_balance', async () => {
    const key = await stack.gateway.account('anth-empty');
    const before = stack.upstream.requests.length;

    const error = await refusal(sdk(key).messages.create(HELLO));

    expect(error).toBeInstanceOf(PaymentRequiredError);
    expect(error).toMatchObject({
      status: 402,
      error: { type: 'error', error: { type: 'insufficient_balance' } },
    });
    expect(stack.upstream.requests.length).toBe(before);
  });

  it('refuses a model with no price with 404 model_not_found', async () => {
    const key = await stack.gateway.account('anth-model', '10');

    const error = await refusal(sdk(key).messages.create({ ...HELLO, model: 'claude-nope' }));

    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({ status: 404, error: { error: { type: 'model_not_found' } } });
  });

  it('refuses a body without max_tokens with 400 before the upstream', async () => {
    const key = await stack.gateway.account('anth-shape', '10');
    const before = stack.upstream.requests.length;
    const { max_tokens: _dropped, ...noMax } = HELLO;

    const error = await refusal(
      sdk(key).messages.create(noMax as unknown as Anthropic.MessageCreateParamsNonStreaming),
    );

    expect(error).toBeInstanceOf(BadRequestError);
    expect(error).toMatchObject({ status: 400, error: { error: { type: 'invalid_request' } } });
    expect(stack.upstream.requests.length).toBe(before);
  });

  it('refuses a body that is not JSON with 400 invalid_json before the upstream', async () => {
    const key = await stack.gateway.account('anth-json', '10');
    const before = stack.upstream.requests.length;

    const res = await fetch(`${stack.gateway.publicUrl}/anthropic/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': key, 'content-type': 'application/json' },
      body: '{"model": "LongCat-2.0",',
    });

    expect(res.status).toBe(400);
    expect(res.headers.get('x-request-id')).toMatch(/^req_/);
    expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'invalid_json' } });
    expect(stack.upstream.requests.length).toBe(before);
  });
});

describe('AnthropicStreamMeter', () => {
  const event = (data: Record<string, unknown>) =>
    Buffer.from(`event: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`);

  it('holds message_stop and forwards everything else', () => {
    const meter = new AnthropicStreamMeter();

    expect(meter.inspect(event({ type: 'ping' })).kind).toBe('forward');
    expect(meter.inspect(event({ type: 'message_stop' }))).toBe(HOLD);
  });

  it('reports nothing until a message_delta gives the output count', () => {
    const meter = new AnthropicStreamMeter();
    const usage = { input_tokens: 7, cache_read_input_tokens: 3, output_tokens: 1 };

    meter.inspect(event({ type: 'message_start', message: { usage } }));
    expect(meter.reported()).toBeUndefined();
    meter.inspect(event({ type: 'message_delta', usage: { output_tokens: 42 } }));

    expect(meter.reported()).toEqual({ uncached_input: 7, cached_input: 3, output: 42 });
  });
});
