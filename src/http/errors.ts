import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { asGatewayError, GatewayError, openAiErrorBody } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * The one error handler of the account and operator APIs: every refusal becomes the OpenAI
 * error shape with the code's status; anything unexpected is logged and becomes a 500.
 */
export function errorResponder(logger: Logger) {
  return function respondWithError(thrown: unknown, c: Context): Response {
    const error = asGatewayError(thrown);
    if (error.status >= 500) logger.error({ err: thrown, path: c.req.path }, error.message);
    if (error.retryAfterSeconds !== undefined) {
      c.header('retry-after', String(error.retryAfterSeconds));
    }
    return c.json(openAiErrorBody(error), error.status as ContentfulStatusCode);
  };
}

/** Reads a JSON body for the account and operator APIs; an empty body reads as `{}`. */
export async function jsonBody(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new GatewayError('invalid_json', 'The request body is not valid JSON.');
  }
}

export function notFound(): GatewayError {
  return new GatewayError('route_not_found', 'No such route.');
}
