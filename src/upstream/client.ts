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
 * two body chunks, which is what the contract calls the idle timeout. undici checks both on a
 * coarse clock (a tick of about half a second), so either may fire up to a second late.
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

/**
 * Names a failure to reach the upstream, or to hear from it in time, for the client: a timeout
 * is 504 (the upstream may be slow, not gone), anything else (refused, reset, closed) is 502.
 * Used for failures before the status line and inside the body alike.
 */
export function upstreamFailure(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  const timeout = (message: string) =>
    new GatewayError('upstream_timeout', message, { cause: error });
  if (error instanceof errors.ConnectTimeoutError) {
    return timeout('Connecting to the upstream timed out.');
  }
  if (error instanceof errors.HeadersTimeoutError) {
    return timeout('The upstream did not start its response in time.');
  }
  if (error instanceof errors.BodyTimeoutError) {
    return timeout('The upstream went silent in the middle of its response.');
  }
  const name = (error as Error | undefined)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') {
    return timeout('The request to the upstream ran past its time limit.');
  }
  if (error instanceof errors.SocketError) {
    return new GatewayError(
      'upstream_unreachable',
      'The upstream closed the connection before its response was complete.',
      { cause: error },
    );
  }
  return new GatewayError('upstream_unreachable', 'The upstream could not be reached.', {
    cause: error,
  });
}
