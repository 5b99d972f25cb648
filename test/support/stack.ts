import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll } from 'vitest';
import { startTestGateway, type TestGateway } from './gateway.js';
import { TestRedis } from './redis.js';
import { FakeUpstream } from './upstream.js';

/** What one test file runs against: its own Redis, fake upstream and gateway. */
export interface Stack {
  redis: TestRedis;
  upstream: FakeUpstream;
  gateway: TestGateway;
}

/**
 * Starts a private Redis, a fake LongCat upstream and a gateway pointed at both before the
 * file's tests, and stops them after. `env` adds or overrides gateway settings.
 */
export function useStack(env: Record<string, string> = {}): Stack {
  const stack = {} as Stack;
  beforeAll(async () => {
    stack.redis = await new TestRedis().start();
    stack.upstream = await new FakeUpstream().start();
    stack.gateway = await startTestGateway({
      REDIS_URL: stack.redis.url,
      UPSTREAM_OPENAI_URL: `${stack.upstream.url}/openai`,
      UPSTREAM_ANTHROPIC_URL: `${stack.upstream.url}/anthropic`,
      ...env,
    });
  });
  afterAll(async () => {
    await stack.gateway?.close();
    await stack.upstream?.stop();
    await stack.redis?.stop();
  });
  return stack;
}

/** A barrier a test opens when it chooses, to pause a fake upstream in the middle of an answer. */
export class Gate {
  open: () => void = () => {};
  readonly opened = new Promise<void>((resolve) => {
    this.open = resolve;
  });
}

/**
 * Answers a streamed chat request with one content event, then waits for `gate` before it sends
 * the usage chunk and `[DONE]`. `reached` resolves once the first event is written.
 */
export function pausedChatStream(upstream: FakeUpstream, gate: Gate) {
  let reached: () => void = () => {};
  const firstEventSent = new Promise<void>((resolve) => {
    reached = resolve;
  });
  upstream.respondWith(async (_request, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: 'Hi' } }] })}\n\n`);
    reached();
    await gate.opened;
    res.write(`data: ${JSON.stringify({ choices: [], usage: upstream.chatUsage() })}\n\n`);
    res.end('data: [DONE]\n\n');
  });
  return firstEventSent;
}

/**
 * Answers a plain chat request only once `gate` opens; `reached` resolves when the request has
 * arrived, so a test can act while it is in flight.
 */
export function pausedChat(upstream: FakeUpstream, gate: Gate) {
  let reached: () => void = () => {};
  const arrived = new Promise<void>((resolve) => {
    reached = resolve;
  });
  upstream.respondWith(async (_request, res: ServerResponse) => {
    reached();
    await gate.opened;
    const body = JSON.stringify({
      id: 'chatcmpl-paused',
      object: 'chat.completion',
      created: 1,
      model: 'LongCat-2.0',
      choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
      usage: upstream.chatUsage(),
    });
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  return arrived;
}
