import { once } from 'node:events';
import { readdirSync, writeFileSync } from 'node:fs';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../src/metrics/metrics.js';
import { type Charge, SettleCode } from '../src/settlement/settle.js';
import { Settler } from '../src/settlement/settler.js';
import { accountOf, startTestGateway, type TestGateway, usageOf } from './support/gateway.js';
import { TestRedis } from './support/redis.js';
import { FakeUpstream } from './support/upstream.js';

const MESSAGES = [{ role: 'user' as const, content: 'Say hello.' }];

let redis: TestRedis;
let upstream: FakeUpstream;
let gateway: TestGateway;

beforeAll(async () => {
  redis = await new TestRedis().start();
  upstream = await new FakeUpstream().start();
  upstream.usage = { input: 1_000_000, cached: 400_000, output: 500_000 };
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

function clientFor(key: string) {
  return new OpenAI({ apiKey: key, baseURL: `${gateway.publicUrl}/v1`, maxRetries: 0 });
}

function chargeFor(accountId: string, requestId: string): Charge {
  return {
    accountId,
    requestId,
    model: 'LongCat-2.0',
    createdAtMs: Date.now(),
    counts: { uncached_input: 600_000, cached_input: 400_000, output: 500_000 },
    prices: { uncached_input: 300_000, cached_input: 6_000, output: 1_200_000 },
    estimated: false,
  };
}

describe('exactly-once settlement', () => {
  it('charges a retried settlement of the same request id once', async () => {
    await gateway.account('retry', '10');
    const { settler } = gateway.deps;
    const first = await settler.settle(chargeFor('retry', 'req_retried'));
    const second = await settler.settle(chargeFor('retry', 'req_retried'));

    expect(first?.code).toBe(SettleCode.Settled);
    expect(second?.code).toBe(SettleCode.AlreadySettled);
    expect(await usageOf(gateway, 'retry')).toHaveLength(1);
    expect((await accountOf(gateway, 'retry')).balance).toBe('9.2176');
  });

  it('replays a journal left by a crashed gateway without charging twice', async () => {
    await gateway.account('replay', '10');
    await gateway.deps.settler.settle(chargeFor('replay', 'req_landed'));

    // A second settler over a journal that holds the landed charge and one that never landed.
    const journal = gateway.deps.config.settlementJournalDir;
    for (const id of ['req_landed', 'req_lost']) {
      writeFileSync(`${journal}/${id}.json`, JSON.stringify(chargeFor('replay', id)));
    }
    const restarted = new Settler(
      gateway.deps.scripts,
      journal,
      gateway.deps.logger,
      createMetrics(),
    );
    const drained = once(restarted, 'drained');
    expect(restarted.replayJournal()).toBe(2);
    await drained;
    restarted.close();

    expect((await usageOf(gateway, 'replay')).map((r) => r.request_id).sort()).toEqual([
      'req_landed',
      'req_lost',
    ]);
    expect((await accountOf(gateway, 'replay')).balance).toBe('8.4352');
    expect(readdirSync(journal)).toEqual([]);
  });
});

describe('Redis outages', () => {
  it('refuses with 503 and forwards nothing while Redis is down', async () => {
    const key = await gateway.account('outage', '10');
    upstream.requests.length = 0;
    await redis.kill();
    try {
      const res = await gateway.call('/v1/chat/completions', {
        method: 'POST',
        key,
        body: JSON.stringify({ model: 'LongCat-2.0', messages: MESSAGES }),
      });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(await res.json()).toMatchObject({ error: { code: 'billing_unavailable' } });
      expect(upstream.requests).toEqual([]);
      expect((await fetch(`${gateway.adminUrl}/healthz`)).status).toBe(503);
    } finally {
      await restartRedis();
    }
  });

  it('bills once, when Redis returns, a request admitted before Redis died', async () => {
    const key = await gateway.account('crash', '10');
    let finish: () => void = () => {};
    const upstreamMayFinish = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const upstreamReached = new Promise<void>((reached) => {
      upstream.respondWith(async (_request, res) => {
        reached();
        await upstreamMayFinish;
        upstream.respondWith(undefined);
        const body = JSON.stringify({
          id: 'x',
          object: 'chat.completion',
          created: 1,
          model: 'LongCat-2.0',
          choices: [
            { index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' },
          ],
          usage: upstream.chatUsage(),
        });
        res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      });
    });

    const reply = clientFor(key).chat.completions.create({
      model: 'LongCat-2.0',
      messages: MESSAGES,
    });
    await upstreamReached;
    await redis.kill();
    const deferred = once(gateway.deps.settler, 'deferred');
    finish();
    expect((await reply).choices[0]?.message.content).toBe('hi');
    await deferred;
    expect(gateway.deps.settler.pendingCount).toBe(1);

    const landed = once(gateway.deps.settler, 'landed');
    await restartRedis();
    await landed;

    const records = await usageOf(gateway, 'crash');
    expect(records).toHaveLength(1);
    expect(records[0]?.cost).toBe('0.7824');
    expect((await accountOf(gateway, 'crash')).balance).toBe('9.2176');
  });
});

async function restartRedis(): Promise<void> {
  const ready = once(gateway.deps.redis, 'ready');
  await redis.start();
  await ready;
}
