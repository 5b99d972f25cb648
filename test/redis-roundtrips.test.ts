import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gate, pausedChatStream, useStack } from './support/stack.js';

const stack = useStack();
let probe: Redis;
let key: string;

beforeAll(async () => {
  probe = new Redis(stack.redis.url);
  key = await stack.gateway.account('counted', '10');
});

afterAll(() => {
  probe.disconnect();
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
  return stack.gateway.call('/v1/chat/completions', {
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
    const gate = new Gate();
    void pausedChatStream(stack.upstream, gate);

    const recording = await recordCommands();
    const res = await chat(true);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    const atFirstByte = await recording.caughtUp();

    gate.open();
    while (!(await reader.read()).done) {}
    const atEnd = await recording.caughtUp();
    recording.stop();
    stack.upstream.respondWith(undefined);

    // Admission before the first byte; settlement only once the upstream has ended.
    expect(atFirstByte).toEqual(['evalsha']);
    expect(atEnd).toEqual(['evalsha', 'evalsha']);
  });
});
