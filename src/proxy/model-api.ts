import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { admit, holdNano, releaseHold } from '../admission/admit.js';
import { type ParsedKey, parseApiKey, presentedKey } from '../auth/api-keys.js';
import type { Deps } from '../deps.js';
import { asGatewayError, GatewayError } from '../errors.js';
import type { PicoPerToken } from '../money/prices.js';
import type { Charge } from '../settlement/settle.js';
import { sendUpstream, upstreamFailure } from '../upstream/client.js';
import { clientResponseHeaders, upstreamRequestHeaders } from '../upstream/headers.js';
import { type MeteredUsage, usageOrEstimate } from '../usage/meter.js';
import { parseJson } from '../usage/openai.js';
import { parseJsonObject, readBody } from './body.js';
import { Exchange } from './exchange.js';
import { type ApiFormat, type Json, responseTextChars } from './formats.js';
import { relayStream } from './relay.js';
import { retryAfterSeconds, upstreamRefusal } from './upstream-errors.js';
import { writeError } from './write-error.js';

/** A request that passed admission, with everything its settlement needs. */
interface Admitted {
  exchange: Exchange;
  key: ParsedKey;
  prices: PicoPerToken;
  requestChars: number;
  stream: boolean;
  stripUsage: boolean;
  body: Buffer;
  /** Set once a charge went to the settler, which releases the hold with the charge. */
  billed: boolean;
  /** The hold admission placed; settlement or release names it to take it off. */
  heldNano: bigint;
}

/**
 * Serves one metered model API request: read and check the body, authenticate and admit, then
 * forward and bill. Writes the response itself (on Node's `ServerResponse`) so that streams keep
 * back-pressure and a client disconnect never stops the upstream read.
 */
export async function serveMetered(
  deps: Deps,
  format: ApiFormat,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const exchange = new Exchange(format.route);
  deps.metrics.requestsInFlight.inc();
  try {
    const admitted = await admitRequest(deps, format, request, exchange);
    await forward(deps, format, admitted, request, response);
  } catch (error) {
    const refusal = asGatewayError(error);
    exchange.status = refusal.status;
    exchange.outcome = refusal.code;
    // An exhausted upstream quota was logged at error level where it was found.
    if (refusal.status >= 500 && refusal.code !== 'upstream_quota_exhausted') {
      deps.logger.warn({ requestId: exchange.id, err: error }, 'failed');
    }
    writeError(response, format.family, refusal, exchange.id);
  } finally {
    deps.metrics.requestsInFlight.dec();
    exchange.finish(deps.logger, deps.metrics);
  }
}

async function admitRequest(
  deps: Deps,
  format: ApiFormat,
  request: IncomingMessage,
  exchange: Exchange,
): Promise<Admitted> {
  const body = await readBody(request, deps.config.maxBodyBytes);
  const json = parseJsonObject(body);
  const problem = format.problem(json);
  if (problem) throw new GatewayError('invalid_request', problem);
  exchange.model = json.model as string;

  const key = parseApiKey(
    presentedKey(request.headers.authorization, header(request, 'x-api-key')),
  );
  if (!key) throw new GatewayError('invalid_api_key', 'The API key is missing or malformed.');
  exchange.accountId = key.accountId;

  const now = Date.now();
  const prices = deps.prices.priceAt(exchange.model, now);
  if (!prices) {
    throw new GatewayError('model_not_found', `The model '${exchange.model}' has no price.`, {
      param: 'model',
    });
  }

  const stream = json.stream === true;
  const hadStreamOptions = json.stream_options !== undefined;
  const stripUsage = stream && format.requestUsage(json);
  const maxOutput = format.maxOutputTokens(json) ?? deps.config.defaultMaxOutputTokens;
  // With holds off the hold still marks the request as in flight, at zero.
  const heldNano = deps.config.holds ? holdNano(body.length, maxOutput, prices) : 0n;
  await admit(deps.scripts, {
    key,
    requestId: exchange.id,
    nowMs: now,
    holdNano: heldNano,
    holdLifetimeMs: deps.config.requestTimeoutMs,
    holds: deps.config.holds,
  });
  deps.metrics.holdsInFlight.inc();

  const upstreamBody = !stripUsage
    ? body
    : hadStreamOptions
      ? Buffer.from(JSON.stringify(json))
      : withLeadingField(body, '"stream_options":{"include_usage":true}');
  return {
    exchange,
    key,
    prices,
    requestChars: body.length,
    stream,
    stripUsage,
    body: upstreamBody,
    billed: false,
    heldNano,
  };
}

async function forward(
  deps: Deps,
  format: ApiFormat,
  admitted: Admitted,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  // The request timeout bounds everything from here on, reading on after a client left included.
  const deadline = deps.deadlines.start(deps.config.requestTimeoutMs);
  try {
    const upstream = await callUpstream(deps, format, admitted, request, deadline.signal);
    if (upstream.statusCode !== 200) {
      await relayRefusal(deps, admitted.exchange, upstream, response);
      return;
    }
    if (admitted.stream) await relayMeteredStream(deps, format, admitted, upstream, response);
    else await relayMeteredBody(deps, format, admitted, upstream, response);
  } finally {
    deadline.done();
    deps.metrics.holdsInFlight.dec();
    if (!admitted.billed) await releaseQuietly(deps, admitted);
  }
}

async function callUpstream(
  deps: Deps,
  format: ApiFormat,
  admitted: Admitted,
  request: IncomingMessage,
  signal: AbortSignal,
): Promise<Dispatcher.ResponseData> {
  const base =
    format.family === 'anthropic'
      ? deps.config.upstreamAnthropicUrl
      : deps.config.upstreamOpenAiUrl;
  const headers = upstreamRequestHeaders(request.headers);
  headers['content-type'] = 'application/json';
  headers['accept-encoding'] = 'identity';
  if (deps.config.upstreamApiKey) {
    headers.authorization = `Bearer ${deps.config.upstreamApiKey}`;
    if (format.family === 'anthropic') headers['x-api-key'] = deps.config.upstreamApiKey;
  }

  const sentAt = performance.now();
  const upstream = await sendUpstream(deps.agent, {
    url: new URL(base + format.upstreamPath),
    method: 'POST',
    headers,
    body: admitted.body,
    signal,
  });
  deps.metrics.upstreamTtfb.observe({ route: format.route }, (performance.now() - sentAt) / 1000);
  return upstream;
}

/** An upstream non-200 goes to the client as it came, and is never billed. */
async function relayRefusal(
  deps: Deps,
  exchange: Exchange,
  upstream: Dispatcher.ResponseData,
  response: ServerResponse,
): Promise<void> {
  const body = await readUpstreamBody(upstream);
  const json = parseJson(body.toString('utf8'));
  const refusal = upstreamRefusal(upstream.statusCode, json);
  if (refusal) {
    deps.metrics.upstreamQuotaExhausted.inc();
    deps.logger.error({ requestId: exchange.id, status: upstream.statusCode }, refusal.message);
    throw refusal;
  }

  exchange.status = upstream.statusCode;
  exchange.outcome = 'upstream_error';
  const headers = clientResponseHeaders(upstream.headers, exchange.id, body.length);
  const retryAfter = retryAfterSeconds(upstream.statusCode, headers, json);
  if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
  response.writeHead(upstream.statusCode, headers);
  response.end(body);
}

/**
 * Relays a plain 200 and bills it. A body that breaks or stalls is not billed: the client gets
 * 502 or 504 and none of the response, as when the upstream fails before its status line.
 */
async function relayMeteredBody(
  deps: Deps,
  format: ApiFormat,
  admitted: Admitted,
  upstream: Dispatcher.ResponseData,
  response: ServerResponse,
): Promise<void> {
  const { exchange } = admitted;
  const body = await readUpstreamBody(upstream);
  const json = parseJson(body.toString('utf8'));
  const reported = json ? format.usage(json) : undefined;
  // Text is only counted when there is no usage to bill by.
  const outputChars = reported ? 0 : json ? responseTextChars(format, json) : body.length;
  await bill(deps, admitted, usageOrEstimate(reported, admitted.requestChars, outputChars));

  exchange.status = 200;
  response.writeHead(200, clientResponseHeaders(upstream.headers, exchange.id, body.length));
  response.end(body);
}

/** The whole upstream body; a reset or a stall inside it becomes the client's 502 or 504. */
async function readUpstreamBody(upstream: Dispatcher.ResponseData): Promise<Buffer> {
  try {
    return Buffer.from(await upstream.body.arrayBuffer());
  } catch (error) {
    throw upstreamFailure(error);
  }
}

/**
 * Relays a streamed 200. The status line goes out with the first event (see `relayStream`), so a
 * stream that fails before it still gets an error status and no bill.
 */
async function relayMeteredStream(
  deps: Deps,
  format: ApiFormat,
  admitted: Admitted,
  upstream: Dispatcher.ResponseData,
  response: ServerResponse,
): Promise<void> {
  const { exchange } = admitted;
  const meter = format.streamMeter(admitted.stripUsage);
  const outcome = await relayStream(upstream.body, response, meter, {
    start() {
      exchange.status = 200;
      response.writeHead(200, clientResponseHeaders(upstream.headers, exchange.id));
    },
    async settle() {
      const usage = usageOrEstimate(
        meter.reported(),
        admitted.requestChars,
        meter.outputChars(),
        meter.reportedInput?.(),
      );
      await bill(deps, admitted, usage);
    },
  });
  if (!outcome.started && outcome.broken) throw upstreamFailure(outcome.failure);
  if (outcome.clientGone) exchange.outcome = 'served_client_gone';
  if (outcome.broken) exchange.outcome = 'served_broken';
}

/** Settles the request; a settlement Redis cannot take now is kept and lands later. */
async function bill(deps: Deps, admitted: Admitted, usage: MeteredUsage): Promise<void> {
  const { exchange } = admitted;
  exchange.counts = usage.counts;
  exchange.estimated = usage.estimated;
  const charge: Charge = {
    accountId: admitted.key.accountId,
    requestId: exchange.id,
    model: exchange.model,
    createdAtMs: Date.now(),
    counts: usage.counts,
    prices: admitted.prices,
    estimated: usage.estimated,
    heldNano: admitted.heldNano.toString(),
  };
  admitted.billed = true;
  exchange.settlement = await deps.settler.settle(charge);
}

async function releaseQuietly(deps: Deps, admitted: Admitted): Promise<void> {
  try {
    await releaseHold(
      deps.scripts,
      admitted.key.accountId,
      admitted.exchange.id,
      admitted.heldNano,
    );
  } catch (error) {
    deps.logger.warn({ requestId: admitted.exchange.id, err: error }, 'hold not released');
  }
}

/**
 * Adds a field to a JSON object body without parsing and printing it again: the body is known to
 * be a non-empty object without that field, so the field and a comma go right after its `{`.
 */
function withLeadingField(body: Buffer, field: string): Buffer {
  const brace = body.indexOf(0x7b);
  return Buffer.concat([
    body.subarray(0, brace + 1),
    Buffer.from(`${field},`),
    body.subarray(brace + 1),
  ]);
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export type { Json };
