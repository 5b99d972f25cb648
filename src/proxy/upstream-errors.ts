import { GatewayError } from '../errors.js';
import type { Json } from './formats.js';

const QUOTA_CODE = 'insufficient_quota';

/**
 * An upstream 402, or a 403 whose code is `insufficient_quota`, means the operator's own LongCat
 * balance is exhausted. That is no fault of the client's and nothing it can fix, so the client
 * gets 503 and the operator a log line and a metric. The Anthropic error shape has no `code`, so
 * there the code is looked for in `error.type`.
 */
export function upstreamRefusal(status: number, body: Json | undefined): GatewayError | undefined {
  const error = (body?.error ?? {}) as Json;
  const quotaCode = error.code === QUOTA_CODE || error.type === QUOTA_CODE;
  const quota = status === 402 || (status === 403 && quotaCode);
  if (!quota) return undefined;
  return new GatewayError(
    'upstream_quota_exhausted',
    "The gateway's upstream account is out of quota; the operator has been alerted.",
    { retryAfterSeconds: 60 },
  );
}

/**
 * The `Retry-After` value for an upstream 429 that names its wait only in the body (as
 * `retry_after` or `error.retry_after`, in seconds), or `undefined`. The header's delay form is
 * a whole number of seconds (RFC 9110 §10.2.3), so a fractional wait is rounded up, never down.
 */
export function retryAfterSeconds(
  status: number,
  headers: Record<string, string | string[]>,
  json: Json | undefined,
): string | undefined {
  if (status !== 429 || headers['retry-after'] !== undefined) return undefined;
  const value = json?.retry_after ?? (json?.error as Json | undefined)?.retry_after;
  const seconds = typeof value === 'string' ? Number(value) : value;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return undefined;
  return String(Math.ceil(seconds));
}
