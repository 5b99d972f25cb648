import { describe, expect, it } from 'vitest';
import { settledOnce, usageOf } from './support/gateway.js';
import { useStack } from './support/stack.js';

const stack = useStack({ REQUEST_TIMEOUT_MS: '600' });

describe('REQUEST_TIMEOUT_MS', () => {
  it('cuts a stream that outlives it, and bills what came by counting', async () => {
    const key = await stack.gateway.account('slow', '10');
    const upstreamClosed = new Promise<void>((resolve) => {
      stack.upstream.respondWith((_request, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        // An event every 50 ms: never idle, never finished.
        const ticker = setInterval(() => {
          const delta = { choices: [{ index: 0, delta: { content: 'abcd' } }] };
          res.write(`data: ${JSON.stringify(delta)}\n\n`);
        }, 50);
        res.once('close', () => {
          clearInterval(ticker);
          resolve();
        });
      });
    });

    const settled = settledOnce(stack.gateway);
    const res = await stack.gateway.call('/v1/chat/completions', {
      method: 'POST',
      key,
      body: JSON.stringify({
        model: 'LongCat-2.0',
        messages: [{ role: 'user', content: 'go on forever' }],
        stream: true,
      }),
    });
    expect(res.status).toBe(200);
    const cut = (res.body as ReadableStream<Uint8Array>).pipeTo(new WritableStream()).then(
      () => 'ended',
      () => 'cut',
    );

    await upstreamClosed;
    await settled;
    expect(await cut).toBe('cut');
    const [record] = await usageOf(stack.gateway, 'slow');
    expect(record?.estimated).toBe(true);
    expect(record?.output_tokens).toBeGreaterThan(0);
    stack.upstream.respondWith(undefined);
  });
});
