import { Big } from 'big.js';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sumUsd } from '../src/money/nano.js';
import { accountOf, startTestGateway, type TestGateway, usageOf } from './support/gateway.js';
import { TestRedis } from './support/redis.js';
import { FakeUpstream } from './support/upstream.js';

let redis: TestRedis;
let upstream: FakeUpstream;
let gateway: TestGateway;

beforeAll(async () => {
  redis = await new TestRedis().start();
  upstream = await new FakeUpstream().start();
  // Each request costs about $0.0192: 16,000 output tokens at $1.20 per million.
  upstream.usage = { input: 30, cached: 0, output: 16_000 };
  gateway = await startTestGateway({
    REDIS_URL: redis.url,
    UPSTREAM_OPENAI_URL: `${upstream.url}/openai`,
  });
});

afterAll(async () => {
  await gateway.close();
  await upstream.stop();
  await redis.stop();
});

const ONE_REQUEST = '0.019209';

describe('100 concurrent requests on a $1 balance', () => {
  it('overdraws by less than one request, and the records add up to the balance change', async () => {
    const key = await gateway.account('crowd', '1');
    const client = new OpenAI({ apiKey: key, baseURL: `${gateway.publicUrl}/v1`, maxRetries: 0 });
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

    const records = await usageOf(gateway, 'crowd');
    const served = statuses.filter((s) => s === 200).length;
    const balance = (await accountOf(gateway, 'crowd')).balance;
    expect(records.every((r) => r.cost === ONE_REQUEST)).toBe(true);
    expect(records).toHaveLength(served);
    expect(upstream.served).toBe(served);
    const refused = statuses.filter((s) => s !== 200);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((s) => s === 429 || s === 402)).toBe(true);

    expect(new Big(sumUsd(records.map((r) => r.cost))).eq(new Big(1).minus(balance))).toBe(true);
    expect(new Big(balance).gt(new Big(ONE_REQUEST).neg())).toBe(true);
  });
});
