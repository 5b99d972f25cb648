import type { IncomingMessage, ServerResponse } from 'node:http';
import { authenticateKeyHolder } from '../auth/key-holder.js';
import type { Deps } from '../deps.js';
import { asGatewayError } from '../errors.js';
import { sendUpstream } from '../upstream/client.js';
import { clientResponseHeaders, upstreamRequestHeaders } from '../upstream/headers.js';
import { Exchange } from './exchange.js';
import { writeError } from './write-error.js';

/** `GET /v1/models`: the upstream's model list, for any valid key, never billed. */
export async function serveModelList(
  deps: Deps,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const exchange = new Exchange('models');
  const deadline = deps.deadlines.start(deps.config.requestTimeoutMs);
  try {
    exchange.accountId = await authenticateKeyHolder(
      deps.redis,
      request.headers.authorization,
      request.headers['x-api-key'] as string | undefined,
    );
    const headers = upstreamRequestHeaders(request.headers);
    if (deps.config.upstreamApiKey) headers.authorization = `Bearer ${deps.config.upstreamApiKey}`;
    const upstream = await sendUpstream(deps.agent, {
      url: new URL(`${deps.config.upstreamOpenAiUrl}/v1/models`),
      method: 'GET',
      headers,
      signal: deadline.signal,
    });
    const body = Buffer.from(await upstream.body.arrayBuffer());

    exchange.status = upstream.statusCode;
    response.writeHead(
      upstream.statusCode,
      clientResponseHeaders(upstream.headers, exchange.id, body.length),
    );
    response.end(body);
  } catch (error) {
    const refusal = asGatewayError(error);
    exchange.status = refusal.status;
    exchange.outcome = refusal.code;
    writeError(response, 'openai', refusal, exchange.id);
  } finally {
    deadline.done();
    exchange.finish(deps.logger, deps.metrics);
  }
}
