import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { serve } from '@hono/node-server';
import { type Context, Hono } from 'hono';
import { Pool } from 'undici';
import { announceListening, envInteger, isMainModule } from './child.js';

/**
 * The floor: the cheapest proxy that can be built from the gateway's own stack (Hono on
 * @hono/node-server, undici with keep-alive), with no auth, no Redis and no metering. Whatever
 * the gateway costs beyond this is the price of metering.
 */
export interface FloorOptions {
  /** Upstream base, as UPSTREAM_OPENAI_URL: `http://127.0.0.1:PORT/openai`. */
  upstreamBase: string;
  /** The operator's key, put on every forwarded request as the gateway does. */
  upstreamKey: string;
}

/**
 * Hop-by-hop headers (RFC 9110 section 7.6.1) describe one connection and must not be passed on.
 * content-length stays: the body goes through byte for byte, and undici only reports it when the
 * upstream framed its body by length rather than chunks.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

export function createFloorApp(options: FloorOptions): Hono {
  const base = new URL(options.upstreamBase);
  const upstream = new Pool(base.origin, {
    connections: 256,
    pipelining: 1,
    keepAliveTimeout: 30_000,
  });
  const chatPath = `${base.pathname.replace(/\/$/, '')}/v1/chat/completions`;

  const app = new Hono();
  app.post('/v1/chat/completions', async function forwardChat(c: Context) {
    const body = Buffer.from(await c.req.arrayBuffer());

    const answer = await upstream.request({
      method: 'POST',
      path: chatPath,
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${options.upstreamKey}`,
      },
      body,
      signal: c.req.raw.signal,
    });

    const headers = new Headers();
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name)) continue;
      headers.set(name, Array.isArray(value) ? value.join(', ') : value);
    }
    // The body streams through untouched; cancelling the web stream (client gone) destroys the
    // undici body, which closes the upstream connection.
    const stream = Readable.toWeb(answer.body) as WebReadableStream<Uint8Array>;
    return new Response(stream as unknown as ReadableStream<Uint8Array>, {
      status: answer.statusCode,
      headers,
    });
  });

  app.onError(function upstreamFailed(error, c) {
    return c.json({ error: { message: error.message, type: 'bad_gateway' } }, 502);
  });
  return app;
}

function main(): void {
  const upstreamBase = process.env.UPSTREAM_OPENAI_URL;
  if (upstreamBase === undefined) throw new Error('UPSTREAM_OPENAI_URL is required');

  const app = createFloorApp({ upstreamBase, upstreamKey: process.env.UPSTREAM_API_KEY ?? '' });
  const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: envInteger('PORT', 0) });
  server.once('listening', () => announceListening(server));
}

if (isMainModule(import.meta.url)) main();
