import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { TestRedis } from './support/redis.js';
import { FakeUpstream } from './support/upstream.js';

let redis: TestRedis;
let probe: Redis;
let upstream: FakeUpstream;
let gateway: TestGateway;
let key: string;

beforeAll(async () => {
  redis = await new TestRedis().start();
  probe = new Redis(redis.url);
  upstream = await new FakeUpstream().start();
  gateway = await startTestGateway({
    REDIS_URL: redis.url,
    UPSTREAM_OPENAI_URL: `${upstream.url}/openai`,
  });
  key = await gateway.account('counted', '10');
});

afterAll(async () => {
  probe.disconnect();
  await gateway.close();
  await upstream.stop();
  await redis.stop();
});

/**
 * Records the commands that clients send to Redis, through MONITOR. Commands that scripts run
 * inside Redis are reported with source `lua` and left out: they cost no round trip.
 */
async function recordCommands() {
  const monitor = await probe.monitor();
  const commands: string[] = [];
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source !== 'lua' && args[0]?.toLowerCase() !== 'ping') {
      commands.push(String(args[0]).toLowerCase());
    }
  });

  /** Resolves once MONITOR has reported everything Redis executed before this call. */
  const caughtUp = async () => {
    const mark = `mark-${Math.random()}`;
    const seen = new Promise<void>((resolve) => {
      const onCommand = (_time: string, args: string[]) => {
        if (args[1] !== mark) return;
        monitor.off('monitor', onCommand);
        resolve();
      };
      monitor.on('monitor', onCommand);
    });
    await probe.ping(mark);
    await seen;
    return [...commands];
  };
  return { caughtUp, stop: () => monitor.disconnect() };
}

function chat(stream: boolean) {
  return gateway.call('/v1/chat/completions', {
    method: 'POST',
    key,
    body: JSON.stringify({
      model: 'LongCat-2.0',
      messages: [{ role: 'user', content: 'hi' }],
      stream,
    }),
  });
}

describe('Redis round trips per billed request', () => {
  it('is exactly two EVALSHA calls for a plain request: admit and settle', async () => {
    const recording = await recordCommands();
    const res = await chat(false);
    await res.text();
    const commands = await recording.caughtUp();
    recording.stop();
    expect(res.status).toBe(200);
    expect(commands).toEqual(['evalsha', 'evalsha']);
  });

  it('makes none between the first and the last upstream event of a stream', async () => {
    let finish: () => void = () => {};
    const mayFinish = new Promise<void>((resolve) => {
      finish = resolve;
    });
    upstream.respondWith(async (_request, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(
        `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: 'a' } }] })}\n\n`,
      );
      await mayFinish;
      res.write(`data: ${JSON.stringify({ choices: [], usage: upstream.chatUsage() })}\n\n`);
      res.end('data: [DONE]\n\n');
    });

    const recording = await recordCommands();
    const res = await chat(true);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    const atFirstByte = await recording.caughtUp();

    finish();
    while (!(await reader.read()).done) {}
    const atEnd = await recording.caughtUp();
    recording.stop();
    upstream.respondWith(undefined);

    // Admission before the first byte; settlement only once the upstream has ended.
    expect(atFirstByte).toEqual(['evalsha']);
    expect(atEnd).toEqual(['evalsha', 'evalsha']);
  });
});
