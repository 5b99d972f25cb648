import { Big } from 'big.js';
import OpenAI from 'openai';
import { beforeEach, describe, expect, it } from 'vitest';
import { grantCredits, grantPack, PACK_VALIDITY_MS } from '../src/accounts/grants.js';
import { sumUsd } from '../src/money/nano.js';
import { accountOf, settledOnce, usageOf } from './support/gateway.js';
import { Gate, pausedChat, useStack } from './support/stack.js';

const MESSAGES = [{ role: 'user' as const, content: 'Say hello.' }];
const MONTH_MS = 31 * 24 * 3600 * 1000;

const stack = useStack();

beforeEach(() => {
  stack.upstream.respondWith(undefined);
  stack.upstream.usage = { input: 1_000_000, cached: 400_000, output: 500_000 };
});

async function customer(id: string, usd?: string) {
  const key = await stack.gateway.account(id, usd);
  const client = new OpenAI({
    apiKey: key,
    baseURL: `${stack.gateway.publicUrl}/v1`,
    maxRetries: 0,
  });
  const chat = () => client.chat.completions.create({ model: 'LongCat-2.0', messages: MESSAGES });
  return { key, client, chat };
}

function topUp(id: string, orderId: string, amount: string, paidAt?: string) {
  const body = { order_id: orderId, amount, method: 'wechat_pay', paid_at: paidAt };
  return stack.gateway.admin('POST', `/admin/accounts/${id}/topups`, body);
}

async function statusOf(call: Promise<unknown>): Promise<[number | undefined, string | undefined]> {
  return call.then(
    () => [200, undefined],
    (error: InstanceType<typeof OpenAI.APIError>) => [error.status, error.code ?? undefined],
  );
}

describe('token packs and credits', () => {
  it('burns the pack, then the credits, then the paid balance', async () => {
    const { chat } = await customer('spans', '10');
    await stack.gateway.admin('POST', '/admin/accounts/spans/token-packs', {
      pack_id: 'p',
      tokens: 700_000,
    });
    await stack.gateway.admin('POST', '/admin/accounts/spans/credits', {
      grant_id: 'g',
      amount: '0.1',
    });

    await chat();

    // The pack covers the 600,000 uncached and 100,000 of the cached tokens. What is left costs
    // 300,000 × $0.006/M + 500,000 × $1.20/M = $0.6018: $0.10 of credits, $0.5018 paid.
    const [record] = await usageOf(stack.gateway, 'spans');
    expect(record).toMatchObject({ pack_tokens: 700_000, cost: '0.6018' });
    expect(await accountOf(stack.gateway, 'spans')).toMatchObject({
      balance: '9.4982',
      paid_balance: '9.4982',
      credits: '0',
      token_packs: [],
    });
  });

  it('serves a request on pack tokens at zero balance', async () => {
    const { chat } = await customer('packed');
    stack.upstream.usage = { input: 100, cached: 0, output: 50 };
    expect(await statusOf(chat())).toEqual([402, 'insufficient_balance']);

    const granted = await stack.gateway.admin('POST', '/admin/accounts/packed/token-packs', {
      pack_id: 'p1',
      tokens: 1_000,
    });
    expect(granted.status).toBe(201);
    expect(
      (
        await stack.gateway.admin('POST', '/admin/accounts/packed/token-packs', {
          pack_id: 'p1',
          tokens: 1_000,
        })
      ).status,
    ).toBe(200);

    await chat();
    const view = await accountOf(stack.gateway, 'packed');
    expect(view.balance).toBe('0');
    expect(view.token_packs).toEqual([
      expect.objectContaining({ pack_id: 'p1', tokens_remaining: 850 }),
    ]);
    expect((await usageOf(stack.gateway, 'packed'))[0]).toMatchObject({
      pack_tokens: 150,
      cost: '0',
    });
  });

  it('ignores expired packs and expired credits', async () => {
    const { chat } = await customer('expired');
    const { scripts } = stack.gateway.deps;
    const old = Date.now() - PACK_VALIDITY_MS - 1000;
    await grantPack(scripts, 'expired', { packId: 'old', tokens: 10_000_000, purchasedAtMs: old });
    await grantCredits(scripts, 'expired', {
      grantId: 'lapsed',
      amountNano: 10n ** 10n,
      expiresAtMs: Date.now() - 1000,
    });

    expect(await statusOf(chat())).toEqual([402, 'insufficient_balance']);
    expect(await accountOf(stack.gateway, 'expired')).toMatchObject({
      credits: '0',
      token_packs: [],
    });
  });
});

describe('refunds', () => {
  it('estimates only unconsumed money of orders paid in the last 12 months', async () => {
    const { chat } = await customer('estimate');
    await topUp('estimate', 'old', '0.5', new Date(Date.now() - 13 * MONTH_MS).toISOString());
    await topUp('estimate', 'mid', '3', new Date(Date.now() - MONTH_MS).toISOString());
    await topUp('estimate', 'new', '2');
    await stack.gateway.admin('POST', '/admin/accounts/estimate/credits', {
      grant_id: 'c',
      amount: '5',
    });
    await chat();
    await stack.gateway.admin('POST', '/admin/accounts/estimate/token-packs', {
      pack_id: 'k',
      tokens: 9,
    });

    // Credits paid the $0.7824, so no order is consumed yet: old is excluded for its age.
    expect((await accountOf(stack.gateway, 'estimate')).refundable).toBe('5');

    stack.upstream.usage = { input: 10_000_000, cached: 0, output: 10_000_000 };
    await chat(); // $15, credits pay $4.2176 of it and paid money the remaining $10.7824
    // That consumes old (0.5), mid (3) and new (2) entirely and more: nothing is refundable.
    expect((await accountOf(stack.gateway, 'estimate')).refundable).toBe('0');
  });

  it('attributes spending to the oldest orders, so the newest money stays refundable', async () => {
    const { key, chat } = await customer('attrib');
    await topUp('attrib', 'a-old', '0.5', new Date(Date.now() - 13 * MONTH_MS).toISOString());
    await topUp('attrib', 'b-mid', '3', new Date(Date.now() - MONTH_MS).toISOString());
    await topUp('attrib', 'c-new', '2');
    await chat(); // $0.7824: a-old's $0.5, then $0.2824 of b-mid

    expect((await accountOf(stack.gateway, 'attrib')).refundable).toBe('4.7176');
    const opened = await stack.gateway.call('/v1/account/refunds', {
      method: 'POST',
      key,
      body: JSON.stringify({ reason: 'moving on' }),
    });
    expect(opened.status).toBe(201);
    const refund = (await opened.json()) as {
      id: string;
      status: string;
      estimated_amount: string;
    };
    expect(refund).toMatchObject({ status: 'pending', estimated_amount: '4.7176' });

    const approved = await stack.gateway.admin('POST', `/admin/refunds/${refund.id}/approve`);
    expect(approved.body).toEqual(
      expect.objectContaining({
        id: refund.id,
        status: 'approved',
        amount: '4.7176',
        breakdown: [
          { order_id: 'b-mid', method: 'wechat_pay', amount: '2.7176' },
          { order_id: 'c-new', method: 'wechat_pay', amount: '2' },
        ],
      }),
    );
    expect(await accountOf(stack.gateway, 'attrib')).toMatchObject({
      paid_balance: '0',
      refundable: '0',
      refund_pending: false,
    });
  });

  it('allows one pending request, refuses calls and top-ups while it is pending, and restores both', async () => {
    const { key, chat } = await customer('pending', '10');
    const request = () =>
      stack.gateway.call('/v1/account/refunds', { method: 'POST', key, body: '{"reason":"r"}' });
    const first = (await (await request()).json()) as { id: string };
    const second = await request();
    expect(second.status).toBe(409);
    expect(await second.json()).toMatchObject({ error: { code: 'refund_already_pending' } });

    expect(await statusOf(chat())).toEqual([403, 'refund_pending']);
    const refused = await topUp('pending', 'during', '1');
    expect(refused).toMatchObject({ status: 403, body: { error: { code: 'refund_pending' } } });

    const rejected = await stack.gateway.admin('POST', `/admin/refunds/${first.id}/reject`, {
      reason: 'not eligible',
    });
    expect(rejected.body).toMatchObject({ id: first.id, status: 'rejected' });
    expect(await statusOf(chat())).toEqual([200, undefined]);
    expect((await topUp('pending', 'after', '1')).status).toBe(201);

    // A second request, approved this time: calls and top-ups resume after it too.
    const next = (await (await request()).json()) as { id: string };
    await stack.gateway.admin('POST', `/admin/refunds/${next.id}/approve`);
    expect((await topUp('pending', 'after-approval', '1')).status).toBe(201);
    expect(await statusOf(chat())).toEqual([200, undefined]);

    const history = (await (await stack.gateway.call('/v1/account/refunds', { key })).json()) as {
      data: { id: string; status: string }[];
    };
    expect(history.data.map((r) => [r.id, r.status])).toEqual([
      [next.id, 'approved'],
      [first.id, 'rejected'],
    ]);
    const operatorView = await stack.gateway.admin<{ data: { id: string }[] }>(
      'GET',
      '/admin/refunds?status=approved',
    );
    expect(operatorView.body.data.map((r) => r.id)).toContain(next.id);
  });

  it('refuses a refund below $0.01 with 422', async () => {
    const { key } = await customer('tiny', '0.009');
    const res = await stack.gateway.call('/v1/account/refunds', {
      method: 'POST',
      key,
      body: '{"reason":"r"}',
    });
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ error: { code: 'refund_below_minimum' } });
  });

  it('waits for requests in flight to settle before approving', async () => {
    const { key, client } = await customer('inflight', '10');
    const gate = new Gate();
    const reached = pausedChat(stack.upstream, gate);
    const inFlight = client.chat.completions.create({ model: 'LongCat-2.0', messages: MESSAGES });
    await reached;

    const opened = await stack.gateway.call('/v1/account/refunds', {
      method: 'POST',
      key,
      body: '{"reason":"r"}',
    });
    const { id, estimated_amount } = (await opened.json()) as {
      id: string;
      estimated_amount: string;
    };
    expect(estimated_amount).toBe('10');

    const settled = settledOnce(stack.gateway);
    const approval = stack.gateway.admin<{ amount: string }>(
      'POST',
      `/admin/refunds/${id}/approve`,
    );
    gate.open();
    await inFlight;
    await settled;
    expect((await approval).body.amount).toBe('9.2176');
    expect((await accountOf(stack.gateway, 'inflight')).paid_balance).toBe('0');
  });
});

describe('monthly bills', () => {
  it('equal the sum of the month’s usage records', async () => {
    const { key, chat } = await customer('billed', '100');
    await stack.gateway.admin('POST', '/admin/accounts/billed/token-packs', {
      pack_id: 'p',
      tokens: 1234,
    });
    const usages = [
      { input: 1000, cached: 10, output: 7 },
      { input: 999_999, cached: 333_333, output: 12_345 },
      { input: 5, cached: 5, output: 1 },
    ];
    for (const usage of usages) {
      stack.upstream.usage = usage;
      await chat();
    }

    const month = new Date().toISOString().slice(0, 7);
    const bill = (await (
      await stack.gateway.call(`/v1/account/bills/${month}`, { key })
    ).json()) as {
      requests: number;
      tokens: Record<string, number>;
      cost: Record<string, string>;
    };
    const records = await usageOf(stack.gateway, 'billed');
    const sum = (
      field: 'uncached_input_tokens' | 'cached_input_tokens' | 'output_tokens' | 'pack_tokens',
    ) => records.reduce((total, r) => total + r[field], 0);

    expect(bill.requests).toBe(records.length);
    expect(bill.tokens).toEqual({
      uncached_input: sum('uncached_input_tokens'),
      cached_input: sum('cached_input_tokens'),
      output: sum('output_tokens'),
      pack: sum('pack_tokens'),
    });
    expect(bill.cost.total).toBe(sumUsd(records.map((r) => r.cost)));
    const byKind = sumUsd([
      bill.cost.uncached_input,
      bill.cost.cached_input,
      bill.cost.output,
    ] as string[]);
    expect(new Big(byKind).eq(bill.cost.total as string)).toBe(true);
    expect(new Big(100).minus(bill.cost.total as string).toFixed()).toBe(
      (await accountOf(stack.gateway, 'billed')).balance,
    );
  });
});
