import { once } from 'node:events';
import { type IncomingMessage, request, type ServerResponse } from 'node:http';
import { errors } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { upstreamFailure } from '../src/upstream/client.js';
import { accountOf, startTestGateway, type TestGateway, usageOf } from './support/gateway.js';
import { freePort, TestRedis } from './support/redis.js';
import { FakeUpstream, json } from './support/upstream.js';

const MODEL = 'LongCat-2.0';
/** Small enough to trip in a test, large enough for every ordinary request body here. */
const MAX_BODY_BYTES = 1024;
const TIMEOUT_MS = 300;
/** Held at admission: $1.20 of output, more than the $1 balance, so one hold blocks the next. */
const MAX_TOKENS = 1_000_000;
const TEXT = 'Hello there';

interface Route {
  name: string;
  path: string;
  family: 'openai' | 'anthropic';
  body: Record<string, unknown>;
  /** The first event(s) of a stream on this route, carrying `TEXT` and no final usage. */
  firstEvents: string;
  /** An upstream 403 saying the operator's LongCat quota is spent, in this family's shape. */
  quota403: Record<string, unknown>;
}

const sseEvent = (data: Record<string, unknown>) =>
  `event: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`;

const OPENAI_QUOTA = {
  error: { message: 'quota', type: 'permission_error', code: 'insufficient_quota' },
};

const ROUTES: Route[] = [
  {
    name: 'chat completions',
    path: '/openai/v1/chat/completions',
    family: 'openai',
    body: { model: MODEL, max_tokens: MAX_TOKENS, messages: [{ role: 'user', content: 'Hi' }] },
    firstEvents: `data: ${JSON.stringify({
      id: 'c',
      object: 'chat.completion.chunk',
      choices: [{ index: 0, delta: { content: TEXT }, finish_reason: null }],
    })}\n\n`,
    quota403: OPENAI_QUOTA,
  },
  {
    name: 'responses',
    path: '/openai/v1/responses',
    family: 'openai',
    body: { model: MODEL, max_output_tokens: MAX_TOKENS, input: 'Hi' },
    firstEvents: sseEvent({ type: 'response.output_text.delta', delta: TEXT }),
    quota403: OPENAI_QUOTA,
  },
  {
    name: 'anthropic messages',
    path: '/anthropic/v1/messages',
    family: 'anthropic',
    body: { model: MODEL, max_tokens: MAX_TOKENS, messages: [{ role: 'user', content: 'Hi' }] },
    // message_start carries input counts and a placeholder output count: not a final usage.
    firstEvents:
      sseEvent({
        type: 'message_start',
        message: { id: 'm', content: [], usage: { input_tokens: 9, output_tokens: 1 } },
      }) +
      sseEvent({
        type: 'content_block_delta',
        index: 0,
        delta: { type: 'text_delta', text: TEXT },
      }),
    quota403: { type: 'error', error: { type: 'insufficient_quota', message: 'quota' } },
  },
];

let redis: TestRedis;
let upstream: FakeUpstream;
/** Short timeouts and a small body limit. */
let gateway: TestGateway;
/** Points at a loopback port nobody listens on. */
let unreachable: TestGateway;
let accounts = 0;

beforeAll(async () => {
  redis = await new TestRedis().start();
  upstream = await new FakeUpstream().start();
  gateway = await startTestGateway({
    REDIS_URL: redis.url,
    UPSTREAM_OPENAI_URL: `${upstream.url}/openai`,
    UPSTREAM_ANTHROPIC_URL: `${upstream.url}/anthropic`,
    UPSTREAM_HEADERS_TIMEOUT_MS: String(TIMEOUT_MS),
    UPSTREAM_IDLE_TIMEOUT_MS: String(TIMEOUT_MS),
    MAX_BODY_BYTES: String(MAX_BODY_BYTES),
    SHUTDOWN_GRACE_MS: '1000',
  });
  const nobody = `http://127.0.0.1:${await freePort()}`;
  unreachable = await startTestGateway({
    REDIS_URL: redis.url,
    UPSTREAM_OPENAI_URL: `${nobody}/openai`,
    UPSTREAM_ANTHROPIC_URL: `${nobody}/anthropic`,
    SHUTDOWN_GRACE_MS: '1000',
  });
});

afterAll(async () => {
  await unreachable?.close();
  await gateway?.close();
  await upstream?.stop();
  await redis?.stop();
});

afterEach(() => upstream.respondWith(undefined));

/** A fresh account with $1 and its key. */
async function fund(gw: TestGateway): Promise<{ id: string; key: string }> {
  accounts += 1;
  const id = `fault-${accounts}`;
  return { id, key: await gw.account(id, '1') };
}

function send(gw: TestGateway, route: Route, key: string, stream = false): Promise<Response> {
  const auth: Record<string, string> =
    route.family === 'anthropic' ? { 'x-api-key': key } : { authorization: `Bearer ${key}` };
  return fetch(gw.publicUrl + route.path, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ ...route.body, stream }),
  });
}

/** The gateway's error code from a refusal in the route family's error shape. */
async function errorCode(route: Route, res: Response): Promise<string> {
  const body = (await res.json()) as { error: { code?: string; type: string } };
  return (route.family === 'anthropic' ? body.error.type : body.error.code) ?? '';
}

/**
 * Nothing was billed, and the hold the failed request placed was released: each hold is larger
 * than the $1 balance, so a leaked one would refuse the next request with 429.
 */
async function expectUnbilled(gw: TestGateway, route: Route, id: string, key: string) {
  expect(await usageOf(gw, id)).toEqual([]);
  expect((await accountOf(gw, id)).balance).toBe('1');
  upstream.respondWith(undefined);
  const next = await send(gateway, route, key);
  expect(next.status).toBe(200);
  await next.arrayBuffer();
}

/** The sum of a counter's series in the gateway's Prometheus text. */
async function metric(gw: TestGateway, name: string): Promise<number> {
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) {
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return sum;
}

function sseHead(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
}

describe.each(ROUTES)('$name: faults before the response', (route) => {
  it('answers 502 and bills nothing when the upstream refuses the connection', async () => {
    // A true connect timeout cannot be produced reliably on loopback (the kernel refuses or
    // accepts at once), so this covers the unreachable case; the timeout's mapping to 504 is
    // checked directly below.
    const { id, key } = await fund(unreachable);

    const res = await send(unreachable, route, key);

    expect(res.status).toBe(502);
    expect(await errorCode(route, res)).toBe('upstream_unreachable');
    expect(await usageOf(unreachable, id)).toEqual([]);
    expect((await accountOf(unreachable, id)).balance).toBe('1');
  });

  it('answers 502 and bills nothing when the upstream resets before its status line', async () => {
    const { id, key } = await fund(gateway);
    upstream.respondWith((_req, res) => {
      res.socket?.destroy();
    });

    const res = await send(gateway, route, key);

    expect(res.status).toBe(502);
    expect(await errorCode(route, res)).toBe('upstream_unreachable');
    await expectUnbilled(gateway, route, id, key);
  });

  it('answers 504 and bills nothing when no status line comes in time', async () => {
    const { id, key } = await fund(gateway);
    upstream.respondWith(() => {});

    const res = await send(gateway, route, key);

    expect(res.status).toBe(504);
    expect(await errorCode(route, res)).toBe('upstream_timeout');
    await expectUnbilled(gateway, route, id, key);
  });

  it('answers 504 and bills nothing when a plain 200 goes silent', async () => {
    const { id, key } = await fund(gateway);
    upstream.respondWith((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
    });

    const res = await send(gateway, route, key);

    expect(res.status).toBe(504);
    expect(await errorCode(route, res)).toBe('upstream_timeout');
    await expectUnbilled(gateway, route, id, key);
  });

  it('answers 502 and bills nothing when a plain 200 breaks off', async () => {
    const { id, key } = await fund(gateway);
    upstream.respondWith((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"id":"half', () => res.socket?.destroy());
    });

    const res = await send(gateway, route, key);

    expect(res.status).toBe(502);
    expect(await errorCode(route, res)).toBe('upstream_unreachable');
    await expectUnbilled(gateway, route, id, key);
  });

  it('answers 504 and bills nothing when an error body goes silent', async () => {
    const { id, key } = await fund(gateway);
    upstream.respondWith((_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.flushHeaders();
    });

    const res = await send(gateway, route, key);

    expect(res.status).toBe(504);
    expect(await errorCode(route, res)).toBe('upstream_timeout');
    await expectUnbilled(gateway, route, id, key);
  });

  it('answers 504 and bills nothing when a stream goes silent before its first event', async () => {
    const { id, key } = await fund(gateway);
    upstream.respondWith((_req, res) => {
      sseHead(res);
      res.flushHeaders();
    });

    const res = await send(gateway, route, key, true);

    expect(res.status).toBe(504);
    expect(await errorCode(route, res)).toBe('upstream_timeout');
    await expectUnbilled(gateway, route, id, key);
  });
});

describe.each(ROUTES)('$name: a 200 stream that ends without usage', (route) => {
  // Four characters a token: of the request body as sent, and of the text that came back.
  // Anthropic's message_start gave the input count (9) before the break: that one is kept.
  const sent = JSON.stringify({ ...route.body, stream: true });
  const counted = {
    uncached_input_tokens:
      route.family === 'anthropic' ? 9 : Math.ceil(Buffer.byteLength(sent) / 4),
    cached_input_tokens: 0,
    output_tokens: Math.ceil(TEXT.length / 4),
    estimated: true,
  };

  async function expectEstimated(id: string, before: number) {
    expect(await usageOf(gateway, id)).toMatchObject([counted]);
    expect(await metric(gateway, 'longcat_gateway_estimated_usage_total')).toBe(before + 1);
  }

  it('bills by counting, marked estimated, when the stream breaks', async () => {
    const { id, key } = await fund(gateway);
    const before = await metric(gateway, 'longcat_gateway_estimated_usage_total');
    upstream.respondWith((_req, res) => {
      sseHead(res);
      res.write(route.firstEvents, () => res.socket?.destroy());
    });

    const res = await send(gateway, route, key, true);

    expect(res.status).toBe(200);
    // The client's stream is cut too, so that it cannot pass for a complete one.
    await expect(res.text()).rejects.toThrow();
    await expectEstimated(id, before);
  });

  it('bills by counting, marked estimated, when the stream goes silent', async () => {
    const { id, key } = await fund(gateway);
    const before = await metric(gateway, 'longcat_gateway_estimated_usage_total');
    upstream.respondWith((_req, res) => {
      sseHead(res);
      res.write(route.firstEvents);
    });

    const res = await send(gateway, route, key, true);

    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
    await expectEstimated(id, before);
  });
});

describe.each(ROUTES)('$name: upstream refusals', (route) => {
  it('passes a 429 on with Retry-After taken from retry_after in its body', async () => {
    const { id, key } = await fund(gateway);
    const body = { error: { message: 'slow down', type: 'rate_limit_error', retry_after: 7 } };
    upstream.respondWith((_req, res) => json(res, 429, body));

    const res = await send(gateway, route, key);

    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(await res.json()).toEqual(body);
    await expectUnbilled(gateway, route, id, key);
  });

  it('answers 503 upstream_quota_exhausted to an upstream 402, logged and counted', async () => {
    const { id, key } = await fund(gateway);
    const before = await metric(gateway, 'longcat_gateway_upstream_quota_exhausted_total');
    upstream.respondWith((_req, res) => json(res, 402, { error: { message: 'pay up' } }));

    const res = await send(gateway, route, key);

    expect(res.status).toBe(503);
    const requestId = res.headers.get('x-request-id');
    const body = (await res.json()) as { error: { code?: string; type: string; message: string } };
    expect(route.family === 'anthropic' ? body.error.type : body.error.code).toBe(
      'upstream_quota_exhausted',
    );
    expect(body.error.message).toMatch(/upstream account is out of quota/);
    expect(await metric(gateway, 'longcat_gateway_upstream_quota_exhausted_total')).toBe(
      before + 1,
    );
    const logged = gateway.logs.lines.filter((l) => l.requestId === requestId && l.level === 50);
    expect(logged.map((l) => l.msg)).toEqual([expect.stringMatching(/out of quota/)]);
    const warned = gateway.logs.lines.filter((l) => l.requestId === requestId && l.level === 40);
    expect(warned).toEqual([]);
    await expectUnbilled(gateway, route, id, key);
  });

  it('answers 503 upstream_quota_exhausted to a 403 insufficient_quota', async () => {
    const { id, key } = await fund(gateway);
    const before = await metric(gateway, 'longcat_gateway_upstream_quota_exhausted_total');
    upstream.respondWith((_req, res) => json(res, 403, route.quota403));

    const res = await send(gateway, route, key);

    expect(res.status).toBe(503);
    expect(await errorCode(route, res)).toBe('upstream_quota_exhausted');
    expect(await metric(gateway, 'longcat_gateway_upstream_quota_exhausted_total')).toBe(
      before + 1,
    );
    await expectUnbilled(gateway, route, id, key);
  });

  it('passes any other 403 on as it came', async () => {
    const { id, key } = await fund(gateway);
    const before = await metric(gateway, 'longcat_gateway_upstream_quota_exhausted_total');
    const body = { error: { message: 'not for you', type: 'permission_error' } };
    upstream.respondWith((_req, res) => json(res, 403, body));

    const res = await send(gateway, route, key);

    expect(res.status).toBe(403);
    expect(await res.json()).toEqual(body);
    expect(await metric(gateway, 'longcat_gateway_upstream_quota_exhausted_total')).toBe(before);
    await expectUnbilled(gateway, route, id, key);
  });
});

describe('upstreamFailure', () => {
  it('names a connect timeout 504 upstream_timeout', () => {
    const failure = upstreamFailure(new errors.ConnectTimeoutError());

    expect(failure).toMatchObject({ status: 504, code: 'upstream_timeout' });
  });
});

describe('request body limits and shape', () => {
  const chat = ROUTES[0] as Route;

  /** A request on a raw connection, so that the test controls when (and whether) it ends. */
  function openRequest(headers: Record<string, string>) {
    const url = new URL(gateway.publicUrl);
    const req = request({
      host: url.hostname,
      port: url.port,
      path: chat.path,
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
    });
    // The gateway closes the connection after refusing; writes after that may fail.
    req.on('error', () => {});
    return req;
  }

  async function refusalOf(res: IncomingMessage) {
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error: { code: string } };
  }

  it('refuses an oversized chunked body with 413 while the client is still sending', async () => {
    const { key } = await fund(gateway);
    const before = upstream.requests.length;
    const req = openRequest({ authorization: `Bearer ${key}` });
    req.write(`{"model":"${'a'.repeat(2 * MAX_BODY_BYTES)}`);

    const [res] = (await once(req, 'response')) as [IncomingMessage];

    expect(req.writableEnded).toBe(false);
    expect(res.statusCode).toBe(413);
    expect((await refusalOf(res)).error.code).toBe('request_too_large');
    req.destroy();
    expect(upstream.requests.length).toBe(before);
  });

  it('refuses a declared Content-Length over the limit at once', async () => {
    const { key } = await fund(gateway);
    const req = openRequest({
      authorization: `Bearer ${key}`,
      'content-length': String(100 * MAX_BODY_BYTES),
    });
    req.flushHeaders();

    const [res] = (await once(req, 'response')) as [IncomingMessage];

    expect(res.statusCode).toBe(413);
    expect((await refusalOf(res)).error.code).toBe('request_too_large');
    req.destroy();
  });

  it.each([
    ['a body that is not JSON', '{"model": "LongCat-2.0", ', 'invalid_json'],
    ['a JSON array', '[]', 'invalid_request'],
    ['chat without messages', JSON.stringify({ model: MODEL }), 'invalid_request'],
    ['chat without a model', JSON.stringify({ messages: [] }), 'invalid_request'],
  ])('refuses %s with 400 before the upstream', async (_name, body, code) => {
    const { key } = await fund(gateway);
    const before = upstream.requests.length;

    const res = await gateway.call(chat.path, { method: 'POST', key, body });

    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
    expect(upstream.requests.length).toBe(before);
  });

  it('refuses a Responses input of the wrong type with 400 before the upstream', async () => {
    const { key } = await fund(gateway);
    const before = upstream.requests.length;
    const body = JSON.stringify({ model: MODEL, input: 42 });

    const res = await gateway.call('/openai/v1/responses', { method: 'POST', key, body });

    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_request');
    expect(upstream.requests.length).toBe(before);
  });
});
