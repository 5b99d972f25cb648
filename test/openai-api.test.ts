import OpenAI from 'openai';
import { beforeEach, describe, expect, it } from 'vitest';
import type { UsagePage } from '../src/accounts/usage.js';
import { accountKeys } from '../src/store/keys.js';
import { accountOf, settledOnce, usageOf } from './support/gateway.js';
import { Gate, pausedChat, pausedChatStream, useStack } from './support/stack.js';
import { json } from './support/upstream.js';

const SEED_USAGE = { input: 1_000_000, cached: 400_000, output: 500_000 };
const MESSAGES = [{ role: 'user' as const, content: 'Say hello.' }];

let accountSeq = 0;

const stack = useStack();

beforeEach(() => {
  stack.upstream.respondWith(undefined);
  stack.upstream.usage = SEED_USAGE;
  stack.upstream.sendUsage = true;
  stack.upstream.requests.length = 0;
});

type ApiError = InstanceType<typeof OpenAI.APIError>;

/** The SDK's error for a call that must be refused; fails the test if the call succeeds. */
async function refusalOf(call: Promise<unknown>): Promise<ApiError> {
  const outcome = await call.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(OpenAI.APIError);
  return outcome as ApiError;
}

/** A fresh account with `usd` paid, and an OpenAI client for it at `path`. */
async function customer(usd = '10', path = '/openai/v1') {
  const id = `acct${++accountSeq}`;
  const key = await stack.gateway.account(id, usd);
  const client = new OpenAI({
    apiKey: key,
    baseURL: stack.gateway.publicUrl + path,
    maxRetries: 0,
  });
  return { id, key, client };
}

describe('metering OpenAI chat completions', () => {
  it('bills the seed example at exactly $0.7824, on every base URL', async () => {
    for (const path of ['/openai', '/openai/v1', '/v1']) {
      const { id, client } = await customer('10', path);
      const reply = await client.chat.completions.create({
        model: 'LongCat-2.0',
        messages: MESSAGES,
      });

      expect(reply.choices[0]?.message.content).toBe('Hello from the fake LongCat upstream.');
      const [record] = await usageOf(stack.gateway, id);
      expect(record).toMatchObject({
        model: 'LongCat-2.0',
        uncached_input_tokens: 600_000,
        cached_input_tokens: 400_000,
        output_tokens: 500_000,
        pack_tokens: 0,
        cost: '0.7824',
        estimated: false,
      });
      expect((await accountOf(stack.gateway, id)).balance).toBe('9.2176');
    }
  });

  it('sends the operator key upstream, never the client key', async () => {
    const { key, client } = await customer();
    await client.chat.completions.create({ model: 'LongCat-2.0', messages: MESSAGES });
    const headers = stack.upstream.requests[0]?.headers ?? {};
    expect(headers.authorization).toBe('Bearer sk-operator-upstream');
    expect(JSON.stringify(headers)).not.toContain(key);
  });

  it('bills a stream exactly like the plain request, and hides the usage it asked for', async () => {
    const { id, client } = await customer();
    const stream = await client.chat.completions.create({
      model: 'LongCat-2.0',
      messages: MESSAGES,
      stream: true,
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);

    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(
      'Hello from the fake LongCat upstream.',
    );
    expect(chunks.some((c) => c.usage)).toBe(false);
    expect(stack.upstream.requests[0]?.body?.stream_options).toEqual({ include_usage: true });
    const [record] = await usageOf(stack.gateway, id);
    expect(record?.cost).toBe('0.7824');
    expect((await accountOf(stack.gateway, id)).balance).toBe('9.2176');
  });

  it('passes the usage chunk through to a client that asked for it', async () => {
    const { id, client } = await customer();
    const stream = await client.chat.completions.create({
      model: 'LongCat-2.0',
      messages: MESSAGES,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);

    expect(chunks.at(-1)?.usage?.prompt_tokens).toBe(1_000_000);
    expect((await usageOf(stack.gateway, id))[0]?.cost).toBe('0.7824');
  });

  it('has the charge visible by the time the client has read the end of a stream', async () => {
    const { id, key } = await customer();
    const res = await stack.gateway.call('/v1/chat/completions', {
      method: 'POST',
      key,
      body: JSON.stringify({ model: 'LongCat-2.0', messages: MESSAGES, stream: true }),
    });
    const text = await res.text();
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect((await accountOf(stack.gateway, id)).balance).toBe('9.2176');
  });

  it('bills a client that disconnects mid-stream once the upstream finishes', async () => {
    const { id, key } = await customer();
    const gate = new Gate();
    void pausedChatStream(stack.upstream, gate);

    const abort = new AbortController();
    const res = await stack.gateway.call('/v1/chat/completions', {
      method: 'POST',
      key,
      signal: abort.signal,
      body: JSON.stringify({ model: 'LongCat-2.0', messages: MESSAGES, stream: true }),
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    const settled = settledOnce(stack.gateway);
    abort.abort();
    gate.open();

    await settled;
    expect((await usageOf(stack.gateway, id))[0]?.cost).toBe('0.7824');
    expect((await accountOf(stack.gateway, id)).balance).toBe('9.2176');
  });

  it('bills a 200 without usage by counting, and marks it estimated', async () => {
    const { id, client } = await customer();
    stack.upstream.sendUsage = false;
    await client.chat.completions.create({ model: 'LongCat-2.0', messages: MESSAGES });
    const [record] = await usageOf(stack.gateway, id);
    expect(record?.estimated).toBe(true);
    // "Hello from the fake LongCat upstream." is 37 characters: 10 tokens at 4 a token.
    expect(record?.output_tokens).toBe(10);
    expect(record?.uncached_input_tokens).toBeGreaterThan(0);
    const metrics = await stack.gateway.deps.metrics.registry.getSingleMetricAsString(
      'longcat_gateway_estimated_usage_total',
    );
    expect(metrics).toMatch(/longcat_gateway_estimated_usage_total\{[^}]*\} [1-9]/);
  });
});

describe('metering OpenAI Responses', () => {
  it('bills plain and streamed responses identically', async () => {
    const { id, client } = await customer();
    const plain = await client.responses.create({ model: 'LongCat-2.0', input: 'Say hello.' });
    expect(plain.output_text).toBe('Hello from the fake LongCat upstream.');

    const stream = await client.responses.create({
      model: 'LongCat-2.0',
      input: 'Say hello.',
      stream: true,
    });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    expect(types.at(-1)).toBe('response.completed');

    const records = await usageOf(stack.gateway, id);
    expect(records.map((r) => r.cost)).toEqual(['0.7824', '0.7824']);
    expect((await accountOf(stack.gateway, id)).balance).toBe('8.4352');
  });
});

describe('requests that are not billed', () => {
  it.each([400, 401, 403, 429, 500])('passes an upstream %i through, unbilled', async (status) => {
    const { id, client } = await customer();
    const body = {
      error: { message: `upstream said ${status}`, type: 'x', code: 'upstream' },
    };
    stack.upstream.respondWith((_request, res) => json(res, status, body));

    const error = await client.chat.completions
      .create({ model: 'LongCat-2.0', messages: MESSAGES })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(status);
    expect((error as InstanceType<typeof OpenAI.APIError>).message).toContain(
      `upstream said ${status}`,
    );
    expect(await usageOf(stack.gateway, id)).toEqual([]);
    expect((await accountOf(stack.gateway, id)).balance).toBe('10');
    expect(await stack.gateway.deps.redis.hget(accountKeys(id).account, 'held')).toBe('0');
  });

  it('refuses at zero balance with 402 without contacting the upstream, and resumes after a top-up', async () => {
    const { id, client } = await customer('0.5');
    await client.chat.completions.create({ model: 'LongCat-2.0', messages: MESSAGES });
    expect((await accountOf(stack.gateway, id)).balance).toBe('-0.2824');

    stack.upstream.requests.length = 0;
    const refused = await refusalOf(
      client.chat.completions.create({ model: 'LongCat-2.0', messages: MESSAGES }),
    );
    expect(refused.status).toBe(402);
    expect(refused.code).toBe('insufficient_balance');
    expect(stack.upstream.requests).toEqual([]);

    await stack.gateway.admin('POST', `/admin/accounts/${id}/topups`, {
      order_id: `${id}-second`,
      amount: '0.2825',
      method: 'wechat_pay',
    });
    await client.chat.completions.create({ model: 'LongCat-2.0', messages: MESSAGES });
    expect((await accountOf(stack.gateway, id)).balance).toBe('-0.7823');
  });

  it('answers 429 with Retry-After while requests in flight hold the whole balance', async () => {
    const { key, client } = await customer('0.01');
    const gate = new Gate();
    const reached = pausedChat(stack.upstream, gate);
    // max_tokens 10,000 holds $0.012 at the output price: more than the whole balance.
    const body = { model: 'LongCat-2.0', messages: MESSAGES, max_tokens: 10_000 };
    const first = client.chat.completions.create(body);
    await reached;

    stack.upstream.requests.length = 0;
    const second = await stack.gateway.call('/v1/chat/completions', {
      method: 'POST',
      key,
      body: JSON.stringify(body),
    });
    expect(second.status).toBe(429);
    expect(second.headers.get('retry-after')).toBe('1');
    expect(await second.json()).toMatchObject({ error: { code: 'balance_reserved' } });
    expect(stack.upstream.requests).toEqual([]);

    gate.open();
    await first;
  });

  it('refuses an unknown model with 404 and forwards nothing', async () => {
    const { client } = await customer();
    const error = await refusalOf(
      client.chat.completions.create({ model: 'gpt-unknown', messages: MESSAGES }),
    );
    expect(error.status).toBe(404);
    expect(error.code).toBe('model_not_found');
    expect(stack.upstream.requests).toEqual([]);
  });
});

describe('keys and suspension', () => {
  it('refuses a missing, malformed or unknown key with 401', async () => {
    for (const apiKey of ['nonsense', 'lcgw.acct1.not-the-secret', 'lcgw.nobody.x']) {
      const client = new OpenAI({
        apiKey,
        baseURL: `${stack.gateway.publicUrl}/v1`,
        maxRetries: 0,
      });
      const error = await client.chat.completions
        .create({ model: 'LongCat-2.0', messages: MESSAGES })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    }
    expect(stack.upstream.requests).toEqual([]);
  });

  it('stops a revoked key at once', async () => {
    const { id, client } = await customer();
    const { body } = await stack.gateway.admin<{ id: string; key: string }>(
      'POST',
      `/admin/accounts/${id}/keys`,
    );
    const second = new OpenAI({
      apiKey: body.key,
      baseURL: `${stack.gateway.publicUrl}/v1`,
      maxRetries: 0,
    });
    await second.chat.completions.create({ model: 'LongCat-2.0', messages: MESSAGES });

    expect((await stack.gateway.admin('DELETE', `/admin/keys/${body.id}`)).status).toBe(204);
    const error = await second.chat.completions
      .create({ model: 'LongCat-2.0', messages: MESSAGES })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    await client.chat.completions.create({ model: 'LongCat-2.0', messages: MESSAGES });
  });

  it('refuses a suspended account with 403 from the next request on, until resumed', async () => {
    const { id, client } = await customer();
    await stack.gateway.admin('PUT', `/admin/accounts/${id}/suspension`, { reason: 'chargeback' });
    const error = await refusalOf(
      client.chat.completions.create({ model: 'LongCat-2.0', messages: MESSAGES }),
    );
    expect(error.status).toBe(403);
    expect(error.code).toBe('account_suspended');
    expect((await accountOf(stack.gateway, id)).suspended).toBe(true);

    await stack.gateway.admin('DELETE', `/admin/accounts/${id}/suspension`);
    await client.chat.completions.create({ model: 'LongCat-2.0', messages: MESSAGES });
  });
});

describe('the rest of the public surface', () => {
  it('lists models for a valid key', async () => {
    const { client } = await customer();
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['LongCat-2.0']);
  });

  it('puts an x-request-id on every response, refusals included', async () => {
    const { key } = await customer();
    const served = await stack.gateway.call('/v1/chat/completions', {
      method: 'POST',
      key,
      body: JSON.stringify({ model: 'LongCat-2.0', messages: MESSAGES }),
    });
    const refused = await stack.gateway.call('/v1/chat/completions', { method: 'POST', body: '{' });
    expect(served.headers.get('x-request-id')).toMatch(/^req_/);
    expect(refused.status).toBe(400);
    expect(refused.headers.get('x-request-id')).toMatch(/^req_/);
    expect(await refused.json()).toMatchObject({ error: { code: 'invalid_json' } });

    const account = await stack.gateway.call('/v1/account', { key });
    const unauthenticated = await stack.gateway.call('/v1/account/usage');
    expect(account.headers.get('x-request-id')).toMatch(/^req_/);
    expect(unauthenticated.status).toBe(401);
    expect(unauthenticated.headers.get('x-request-id')).toMatch(/^req_/);
  });

  it('shows the key holder its account, usage and monthly bill', async () => {
    const { id, key, client } = await customer();
    await client.chat.completions.create({ model: 'LongCat-2.0', messages: MESSAGES });
    stack.upstream.usage = { input: 10, cached: 3, output: 5 };
    await client.chat.completions.create({ model: 'LongCat-2.0', messages: MESSAGES });

    const view = await (await stack.gateway.call('/v1/account', { key })).json();
    expect(view).toMatchObject({
      id,
      balance: '9.217591882',
      paid_balance: '9.217591882',
      credits: '0',
    });

    const page1 = (await (
      await stack.gateway.call('/v1/account/usage?limit=1', { key })
    ).json()) as UsagePage;
    expect(page1.data).toHaveLength(1);
    expect(page1.data[0]?.cost).toBe('0.000008118');
    const next = await stack.gateway.call(`/v1/account/usage?limit=1&cursor=${page1.next_cursor}`, {
      key,
    });
    const page2 = (await next.json()) as UsagePage;
    expect(page2.data[0]?.cost).toBe('0.7824');
    expect(page2.next_cursor).toBeNull();

    const month = new Date().toISOString().slice(0, 7);
    const bill = await (await stack.gateway.call(`/v1/account/bills/${month}`, { key })).json();
    expect(bill).toEqual({
      month,
      requests: 2,
      tokens: { uncached_input: 600_007, cached_input: 400_003, output: 500_005, pack: 0 },
      cost: {
        uncached_input: '0.1800021',
        cached_input: '0.002400018',
        output: '0.600006',
        total: '0.782408118',
      },
    });
  });
});
