import type { ServerResponse } from 'node:http';
import { anthropicErrorBody, type GatewayError, openAiErrorBody } from '../errors.js';

/**
 * Writes a refusal in the error shape of the route's API family. Once a response has started
 * there is no status left to change, so the connection is cut instead, which every client
 * reports as a broken response rather than mistaking it for a complete one.
 */
export function writeError(
  response: ServerResponse,
  family: 'openai' | 'anthropic',
  error: GatewayError,
  requestId: string,
): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }

  const body = JSON.stringify(
    family === 'anthropic' ? anthropicErrorBody(error) : openAiErrorBody(error),
  );
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'x-request-id': requestId,
  };
  if (error.retryAfterSeconds !== undefined)
    headers['retry-after'] = String(error.retryAfterSeconds);
  // The rest of an oversized body is never read, so the connection cannot be reused.
  if (error.code === 'request_too_large') headers.connection = 'close';
  response.writeHead(error.status, headers);
  response.end(body);
}
