import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { type HttpBindings, serve } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono } from 'hono';
import { Pool } from 'undici';
import { announceListening, envInteger, isMainModule } from './child.js';

/**
 * The floor: the cheapest proxy that can be built from the gateway's own stack (a Hono route on
 * @hono/node-server, undici with keep-alive, the body written straight to node's response as the
 * gateway's relay does), with no auth, no Redis and no metering. Whatever the gateway costs
 * beyond this is the price of metering.
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

export function createFloorApp(options: FloorOptions): Hono<{ Bindings: HttpBindings }> {
  const base = new URL(options.upstreamBase);
  const upstream = new Pool(base.origin, {
    connections: 256,
    pipelining: 1,
    keepAliveTimeout: 30_000,
  });
  const chatPath = `${base.pathname.replace(/\/$/, '')}/v1/chat/completions`;

  const app = new Hono<{ Bindings: HttpBindings }>();
  app.post('/v1/chat/completions', async function forwardChat(c) {
    const { incoming, outgoing } = c.env;
    const body = await readBody(incoming);

    const answer = await upstream.request({
      method: 'POST',
      path: chatPath,
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${options.upstreamKey}`,
      },
      body,
    });

    outgoing.writeHead(answer.statusCode, endToEndHeaders(answer.headers));
    // pipeline keeps back-pressure; a client that leaves destroys the upstream body with it,
    // which is right for a floor that bills nothing.
    await pipeline(answer.body, outgoing).catch(() => undefined);
    return RESPONSE_ALREADY_SENT;
  });

  app.onError(function upstreamFailed(error, c) {
    return c.json({ error: { message: error.message, type: 'bad_gateway' } }, 502);
  });
  return app;
}

function readBody(incoming: IncomingMessage): Promise<Buffer> {
  return new Promise((done, fail) => {
    const parts: Buffer[] = [];
    incoming.on('data', (part: Buffer) => parts.push(part));
    incoming.on('end', () =>
      done(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts)),
    );
    incoming.on('error', fail);
  });
}

function endToEndHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const passed: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) passed[name] = value;
  }
  return passed;
}

function main(): void {
  const upstreamBase = process.env.UPSTREAM_OPENAI_URL;
  if (upstreamBase === undefined) throw new Error('UPSTREAM_OPENAI_URL is required');

  const app = createFloorApp({ upstreamBase, upstreamKey: process.env.UPSTREAM_API_KEY ?? '' });
  const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: envInteger('PORT', 0) });
  server.once('listening', () => announceListening(server));
}

if (isMainModule(import.meta.url)) main();
