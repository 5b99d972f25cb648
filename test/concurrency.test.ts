import { Big } from 'big.js';
import OpenAI from 'openai';
import { beforeAll, describe, expect, it } from 'vitest';
import { sumUsd } from '../src/money/nano.js';
import { accountOf, usageOf } from './support/gateway.js';
import { useStack } from './support/stack.js';

const stack = useStack();

beforeAll(() => {
  stack.upstream.usage = { input: 30, cached: 0, output: 16_000 };
});

const ONE_REQUEST = '0.019209';

describe('100 concurrent requests on a $1 balance', () => {
  it('overdraws by less than one request, and the records add up to the balance change', async () => {
    const key = await stack.gateway.account('crowd', '1');
    const client = new OpenAI({
      apiKey: key,
      baseURL: `${stack.gateway.publicUrl}/v1`,
      maxRetries: 0,
    });
    const call = (stream: boolean) =>
      client.chat.completions
        .create({
          model: 'LongCat-2.0',
          messages: [{ role: 'user', content: 'Tell me a long story.' }],
          max_tokens: 20_000,
          stream,
        })
        .then(async (reply) => {
          if (stream) for await (const _ of reply as AsyncIterable<unknown>) void _;
          return 200;
        })
        .catch((error: InstanceType<typeof OpenAI.APIError>) => error.status);

    const statuses = await Promise.all(Array.from({ length: 100 }, (_, i) => call(i % 2 === 0)));

    const records = await usageOf(stack.gateway, 'crowd');
    const served = statuses.filter((s) => s === 200).length;
    const balance = (await accountOf(stack.gateway, 'crowd')).balance;
    expect(records.every((r) => r.cost === ONE_REQUEST)).toBe(true);
    expect(records).toHaveLength(served);
    expect(stack.upstream.served).toBe(served);
    const refused = statuses.filter((s) => s !== 200);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((s) => s === 429 || s === 402)).toBe(true);

    expect(new Big(sumUsd(records.map((r) => r.cost))).eq(new Big(1).minus(balance))).toBe(true);
    expect(new Big(balance).gt(new Big(ONE_REQUEST).neg())).toBe(true);
  });
});
