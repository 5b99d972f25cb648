import type { Redis } from 'ioredis';
import { GatewayError } from '../errors.js';
import { formatUsd } from '../money/nano.js';
import { accountKeys } from '../store/keys.js';

export const MAX_PAGE = 1000;

/** The contract's usage record. */
export interface UsageRecord {
  request_id: string;
  created_at: string;
  model: string;
  uncached_input_tokens: number;
  cached_input_tokens: number;
  output_tokens: number;
  pack_tokens: number;
  cost: string;
  estimated: boolean;
}

export interface UsagePage {
  data: UsageRecord[];
  next_cursor: string | null;
}
const STREAM_ID = /^\d+-\d+$/;

/** One page of usage from the `limit` and `cursor` query parameters, as both APIs take them. */
export async function usagePage(
  redis: Redis,
  accountId: string,
  limitParam: string | undefined,
  cursor: string | undefined,
): Promise<UsagePage> {
  const limit = limitParam === undefined ? 100 : Number(limitParam);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new GatewayError('invalid_request', `limit must be an integer from 1 to ${MAX_PAGE}.`, {
      param: 'limit',
    });
  }
  return listUsage(redis, accountId, limit, cursor || undefined);
}

/** One page of usage records, newest first; `next_cursor` continues after the last one. */
export async function listUsage(
  redis: Redis,
  accountId: string,
  limit: number,
  cursor?: string,
): Promise<UsagePage> {
  if (cursor !== undefined && !STREAM_ID.test(cursor)) {
    throw new GatewayError('invalid_request', 'The cursor is not one this API returned.', {
      param: 'cursor',
    });
  }

  const end = cursor === undefined ? '+' : `(${cursor}`;
  const entries = await redis.xrevrange(accountKeys(accountId).usage, end, '-', 'COUNT', limit + 1);
  const page = entries.slice(0, limit);
  const last = page.at(-1);
  return {
    data: page.map(([, fields]) => usageRecord(fields)),
    next_cursor: entries.length > limit && last ? last[0] : null,
  };
}

function usageRecord(flat: string[]): UsageRecord {
  const f: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) f[flat[i] as string] = flat[i + 1] as string;
  return {
    request_id: f.request_id ?? '',
    created_at: f.created_at ?? '',
    model: f.model ?? '',
    uncached_input_tokens: Number(f.uncached_input_tokens),
    cached_input_tokens: Number(f.cached_input_tokens),
    output_tokens: Number(f.output_tokens),
    pack_tokens: Number(f.pack_tokens),
    cost: formatUsd(f.cost ?? '0'),
    estimated: f.estimated === '1',
  };
}

const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;

/** The bill of one UTC calendar month: the sums of that month's usage records. */
export async function monthlyBill(redis: Redis, accountId: string, month: string) {
  if (!MONTH.test(month)) {
    throw new GatewayError('invalid_request', 'The month must be written YYYY-MM.');
  }

  const t = await redis.hgetall(accountKeys(accountId).month(month));
  const tokens = (field: string) => Number(t[`tokens_${field}`] ?? '0');
  const cost = (field: string) => formatUsd(t[`cost_${field}`] ?? '0');
  return {
    month,
    requests: Number(t.requests ?? '0'),
    tokens: {
      uncached_input: tokens('uncached_input'),
      cached_input: tokens('cached_input'),
      output: tokens('output'),
      pack: tokens('pack'),
    },
    cost: {
      uncached_input: cost('uncached_input'),
      cached_input: cost('cached_input'),
      output: cost('output'),
      total: cost('total'),
    },
  };
}
