import { once } from 'node:events';
import { readdirSync, writeFileSync } from 'node:fs';
import OpenAI from 'openai';
import { beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../src/metrics/metrics.js';
import { type Charge, RETRY_WINDOW_MS, SettleCode } from '../src/settlement/settle.js';
import { Settler } from '../src/settlement/settler.js';
import { accountOf, usageOf } from './support/gateway.js';
import { Gate, pausedChat, useStack } from './support/stack.js';

const MESSAGES = [{ role: 'user' as const, content: 'Say hello.' }];

const stack = useStack();

beforeAll(() => {
  stack.upstream.usage = { input: 1_000_000, cached: 400_000, output: 500_000 };
});

function clientFor(key: string) {
  return new OpenAI({ apiKey: key, baseURL: `${stack.gateway.publicUrl}/v1`, maxRetries: 0 });
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
    heldNano: '0',
  };
}

describe('exactly-once settlement', () => {
  it('charges a retried settlement of the same request id once', async () => {
    await stack.gateway.account('retry', '10');
    const { settler } = stack.gateway.deps;
    const first = await settler.settle(chargeFor('retry', 'req_retried'));
    const second = await settler.settle(chargeFor('retry', 'req_retried'));

    expect(first?.code).toBe(SettleCode.Settled);
    expect(second?.code).toBe(SettleCode.AlreadySettled);
    expect(await usageOf(stack.gateway, 'retry')).toHaveLength(1);
    expect((await accountOf(stack.gateway, 'retry')).balance).toBe('9.2176');
  });

  it('replays a journal left by a crashed gateway without charging twice', async () => {
    await stack.gateway.account('replay', '10');
    await stack.gateway.deps.settler.settle(chargeFor('replay', 'req_landed'));

    // A second settler over a journal that holds the landed charge and one that never landed.
    const journal = stack.gateway.deps.config.settlementJournalDir;
    for (const id of ['req_landed', 'req_lost']) {
      writeFileSync(`${journal}/${id}.json`, JSON.stringify(chargeFor('replay', id)));
    }
    const restarted = new Settler(
      stack.gateway.deps.scripts,
      journal,
      stack.gateway.deps.logger,
      createMetrics(),
    );
    const drained = once(restarted, 'drained');
    expect(restarted.replayJournal()).toBe(2);
    await drained;
    restarted.close();

    expect((await usageOf(stack.gateway, 'replay')).map((r) => r.request_id).sort()).toEqual([
      'req_landed',
      'req_lost',
    ]);
    expect((await accountOf(stack.gateway, 'replay')).balance).toBe('8.4352');
    expect(readdirSync(journal)).toEqual([]);
  });

  it('sets aside a kept charge older than its request id can be remembered', async () => {
    await stack.gateway.account('stale', '10');
    const journal = stack.gateway.deps.config.settlementJournalDir;
    const stale = {
      ...chargeFor('stale', 'req_stale'),
      createdAtMs: Date.now() - RETRY_WINDOW_MS - 1,
    };
    writeFileSync(`${journal}/req_stale.json`, JSON.stringify(stale));

    const restarted = new Settler(
      stack.gateway.deps.scripts,
      journal,
      stack.gateway.deps.logger,
      createMetrics(),
    );
    const drained = once(restarted, 'drained');
    restarted.replayJournal();
    await drained;
    restarted.close();

    // Billing it now could bill it twice, since its marker may be gone: the operator decides.
    expect(await usageOf(stack.gateway, 'stale')).toEqual([]);
    expect(readdirSync(journal)).toEqual(['req_stale.rejected.json']);
    expect(stack.gateway.logs.lines).toContainEqual(
      expect.objectContaining({ level: 50, msg: 'charge refused', requestId: 'req_stale' }),
    );
  });
});

describe('Redis outages', () => {
  it('refuses with 503 and forwards nothing while Redis is down', async () => {
    const key = await stack.gateway.account('outage', '10');
    stack.upstream.requests.length = 0;
    await stack.redis.kill();
    try {
      const res = await stack.gateway.call('/v1/chat/completions', {
        method: 'POST',
        key,
        body: JSON.stringify({ model: 'LongCat-2.0', messages: MESSAGES }),
      });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(await res.json()).toMatchObject({ error: { code: 'billing_unavailable' } });
      expect(stack.upstream.requests).toEqual([]);
      expect((await fetch(`${stack.gateway.adminUrl}/healthz`)).status).toBe(503);
    } finally {
      await restartRedis();
    }
  });

  it('bills once, when Redis returns, a request admitted before Redis died', async () => {
    const key = await stack.gateway.account('crash', '10');
    const gate = new Gate();
    const upstreamReached = pausedChat(stack.upstream, gate);

    const reply = clientFor(key).chat.completions.create({
      model: 'LongCat-2.0',
      messages: MESSAGES,
    });
    await upstreamReached;
    await stack.redis.kill();
    const deferred = once(stack.gateway.deps.settler, 'deferred');
    gate.open();
    expect((await reply).choices[0]?.message.content).toBe('hi');
    await deferred;
    expect(stack.gateway.deps.settler.pendingCount).toBe(1);
    stack.upstream.respondWith(undefined);

    const landed = once(stack.gateway.deps.settler, 'landed');
    await restartRedis();
    await landed;

    const records = await usageOf(stack.gateway, 'crash');
    expect(records).toHaveLength(1);
    expect(records[0]?.cost).toBe('0.7824');
    expect((await accountOf(stack.gateway, 'crash')).balance).toBe('9.2176');
  });
});

async function restartRedis(): Promise<void> {
  const ready = once(stack.gateway.deps.redis, 'ready');
  await stack.redis.start();
  await ready;
}
