import { z } from 'zod';
import { GatewayError } from '../errors.js';
import { MAX_AMOUNT_NANO, parseUsd } from '../money/nano.js';
import { ACCOUNT_ID } from '../store/keys.js';

const id = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_.:-]+$/, {
    message: 'letters, digits and _ . : - only',
  });

/** A positive USD amount as a decimal string, read into nano-dollars. */
const amount = z.string().transform((text, ctx) => {
  const nano = parseUsd(text);
  if (nano === undefined || nano <= 0n || nano > MAX_AMOUNT_NANO) {
    ctx.addIssue({ code: 'custom', message: 'a positive decimal string in USD, ≤ 9 decimals' });
    return z.NEVER;
  }
  return nano;
});

/** An RFC 3339 time, read as ms since the epoch so that one instant has one identity. */
const timestamp = z.iso.datetime({ offset: true }).transform((text) => Date.parse(text));

/** Clocks of payment providers and operators drift; a few minutes ahead is still "now". */
const CLOCK_SKEW_MS = 5 * 60 * 1000;
const PACK_VALIDITY_MS = 30 * 24 * 3600 * 1000;

const notInFuture = (ms: number) => ms <= Date.now() + CLOCK_SKEW_MS;

export const CREATE_ACCOUNT = z.object({
  id: z.string().regex(ACCOUNT_ID, { message: '1 to 64 letters, digits, _ or -' }),
});

export const TOP_UP = z.object({
  order_id: id,
  amount,
  method: z.enum(['alipay', 'wechat_pay']),
  paid_at: timestamp.refine(notInFuture, 'must not be in the future').optional(),
});

export const CREDIT_GRANT = z.object({
  grant_id: id,
  amount,
  expires_at: timestamp.refine((ms) => ms > Date.now(), 'must be in the future').nullish(),
});

export const TOKEN_PACK = z.object({
  pack_id: id,
  tokens: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  purchased_at: timestamp
    .refine(notInFuture, 'must not be in the future')
    .refine((ms) => ms + PACK_VALIDITY_MS > Date.now(), 'the pack would have expired already')
    .optional(),
});

export const SUSPENSION = z.object({ reason: z.string().trim().min(1).max(500) });
export const REFUND_REQUEST = z.object({ reason: z.string().trim().min(1).max(500) });
export const REFUND_REJECTION = z.object({ reason: z.string().trim().min(1).max(500) });

/** Validates a body against a schema; a mismatch is a 400 that names each field. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.output<T> {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const first = result.error.issues[0];
  const problems = result.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`);
  throw new GatewayError('invalid_request', problems.join('; '), {
    param: first?.path.join('.') || undefined,
  });
}
