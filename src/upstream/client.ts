import { Agent, type Dispatcher, errors } from 'undici';
import { GatewayError } from '../errors.js';

export interface UpstreamTimeouts {
  connectMs: number;
  headersMs: number;
  idleMs: number;
}

/**
 * One keep-alive connection pool per upstream origin, shared by every request. undici's
 * `headersTimeout` bounds the wait for the status line and `bodyTimeout` the silence between
 * two body chunks, which is what the contract calls the idle timeout.
 */
export function createUpstreamAgent(timeouts: UpstreamTimeouts): Agent {
  return new Agent({
    connect: { timeout: timeouts.connectMs },
    headersTimeout: timeouts.headersMs,
    bodyTimeout: timeouts.idleMs,
    keepAliveTimeout: 30_000,
    connections: 256,
    pipelining: 1,
  });
}

export interface UpstreamRequest {
  url: URL;
  method: 'GET' | 'POST';
  headers: Record<string, string | string[]>;
  body?: Buffer;
  signal: AbortSignal;
}

export async function sendUpstream(
  agent: Dispatcher,
  request: UpstreamRequest,
): Promise<Dispatcher.ResponseData> {
  try {
    return await agent.request({
      origin: request.url.origin,
      path: request.url.pathname + request.url.search,
      method: request.method,
      headers: request.headers,
      body: request.body,
      signal: request.signal,
    });
  } catch (error) {
    throw upstreamFailure(error);
  }
}

/** Names a failure to reach the upstream, or to hear from it in time, for the client. */
export function upstreamFailure(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  if (error instanceof errors.ConnectTimeoutError) {
    return new GatewayError('upstream_timeout', 'Connecting to the upstream timed out.', {
      cause: error,
    });
  }
  if (error instanceof errors.HeadersTimeoutError || error instanceof errors.BodyTimeoutError) {
    return new GatewayError('upstream_timeout', 'The upstream did not answer in time.', {
      cause: error,
    });
  }
  if ((error as Error)?.name === 'AbortError' || (error as Error)?.name === 'TimeoutError') {
    return new GatewayError('upstream_timeout', 'The request timed out upstream.', {
      cause: error,
    });
  }
  return new GatewayError('upstream_unreachable', 'The upstream could not be reached.', {
    cause: error,
  });
}
