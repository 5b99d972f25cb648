import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'hono';
import { GatewayError } from '../errors.js';

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * Guards `/admin/*` with the operator's bearer token. Without a configured token the operator
 * API is off (503) rather than open: an unset variable must never mean "no password".
 */
export function adminAuth(token: string | undefined) {
  const expected = token === undefined ? undefined : digest(token);
  return async function requireAdminToken(c: Context, next: Next) {
    if (!expected) {
      throw new GatewayError('admin_disabled', 'The operator API is off: ADMIN_TOKEN is not set.');
    }
    const presented = c.req.header('authorization')?.match(/^Bearer (.+)$/)?.[1] ?? '';
    // Comparing digests keeps the comparison constant-time whatever the presented length.
    if (!timingSafeEqual(digest(presented), expected)) {
      throw new GatewayError('invalid_admin_token', 'The operator token is missing or wrong.');
    }
    await next();
  };
}
