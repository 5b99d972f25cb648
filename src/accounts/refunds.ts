import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { GatewayError } from '../errors.js';
import { formatUsd } from '../money/nano.js';
import { accountKeys, refundIndexKey, refundListKey } from '../store/keys.js';
import type { Scripts } from '../store/scripts.js';
import { refundableParts, totalNano } from './refundable.js';
import { readAccountState } from './state.js';

/** The smallest refund that may be requested: $0.01 (BILLING.md). */
export const MIN_REFUND_NANO = 10_000_000n;

export type RefundStatus = 'pending' | 'approved' | 'rejected';

export interface RefundRecord {
  id: string;
  account_id: string;
  status: RefundStatus;
  reason: string;
  estimated_amount: string;
  created_at: string;
  amount?: string;
  breakdown?: { order_id: string; method: string; amount: string }[];
  decided_at?: string;
  rejection_reason?: string;
}

/** Mirrors the return codes of `lua/request_refund.lua`. */
export enum RequestRefundCode {
  Opened = 1,
  NoAccount = -1,
  AlreadyPending = -2,
}

/** Mirrors the return codes of `lua/approve_refund.lua` and `lua/reject_refund.lua`. */
export enum DecideRefundCode {
  Done = 1,
  NotPending = -2,
  InFlight = -3,
  SpentSince = -4,
}

/**
 * Opens a refund request for the account's current refundable estimate. From now on the
 * account's API calls and top-ups are refused until an operator decides.
 */
export async function requestRefund(
  scripts: Scripts,
  redis: Redis,
  accountId: string,
  reason: string,
): Promise<RefundRecord> {
  const state = await readAccountState(scripts, accountId);
  if (!state) throw new GatewayError('account_not_found', 'The account no longer exists.');
  if (state.pendingRefundId) throw alreadyPending(state.pendingRefundId);
  const estimate = totalNano(refundableParts(state.orders, state.paidSpentNano, Date.now()));
  if (estimate < MIN_REFUND_NANO) {
    throw new GatewayError(
      'refund_below_minimum',
      `The refundable amount is $${formatUsd(estimate)}; the minimum refund is $0.01.`,
    );
  }

  const record: RefundRecord = {
    id: `rf_${randomBytes(9).toString('base64url')}`,
    account_id: accountId,
    status: 'pending',
    reason,
    estimated_amount: formatUsd(estimate),
    created_at: new Date().toISOString(),
  };
  const k = accountKeys(accountId);
  const [code, pendingId] = (await scripts.run(
    'request_refund',
    [k.account, k.refunds],
    [record.id, JSON.stringify(record)],
  )) as [RequestRefundCode, string];
  if (code === RequestRefundCode.AlreadyPending) throw alreadyPending(pendingId);
  if (code !== RequestRefundCode.Opened)
    throw new GatewayError('account_not_found', 'No such account.');

  await indexRefund(redis, record);
  return record;
}

function alreadyPending(refundId: string): GatewayError {
  return new GatewayError(
    'refund_already_pending',
    `Refund ${refundId} is under review; only one refund request may be pending.`,
  );
}

/**
 * The operator's lists by status live outside the account's slot, so they are written after
 * the account's own state; a list is an index, and the account's record is the truth.
 */
async function indexRefund(redis: Redis, record: RefundRecord, previous?: RefundStatus) {
  const score = Date.parse(record.created_at);
  const index = redis.pipeline();
  index.set(refundIndexKey(record.id), record.account_id);
  if (previous) index.zrem(refundListKey(previous), record.id);
  index.zadd(refundListKey(record.status), score, record.id);
  index.zadd(refundListKey('all'), score, record.id);
  await index.exec();
}

/** An account's refunds, newest first. */
export async function accountRefunds(redis: Redis, accountId: string): Promise<RefundRecord[]> {
  const raw = await redis.hvals(accountKeys(accountId).refunds);
  return raw
    .map((text) => JSON.parse(text) as RefundRecord)
    .sort((a, b) => b.created_at.localeCompare(a.created_at));
}

/** Refunds of every account with the given status (or all), newest first. */
export async function listRefunds(redis: Redis, status: string | undefined) {
  if (status !== undefined && !['pending', 'approved', 'rejected'].includes(status)) {
    throw new GatewayError('invalid_request', 'status must be pending, approved or rejected.', {
      param: 'status',
    });
  }
  const ids = await redis.zrevrange(refundListKey(status ?? 'all'), 0, -1);
  const records = await Promise.all(ids.map((id) => findRefund(redis, id)));
  return records.filter((r): r is RefundRecord => r !== undefined);
}

export async function findRefund(redis: Redis, refundId: string) {
  const accountId = await redis.get(refundIndexKey(refundId));
  if (!accountId) return undefined;
  const text = await redis.hget(accountKeys(accountId).refunds, refundId);
  return text ? (JSON.parse(text) as RefundRecord) : undefined;
}

async function pendingRefund(redis: Redis, refundId: string): Promise<RefundRecord> {
  const record = await findRefund(redis, refundId);
  if (!record) throw new GatewayError('refund_not_found', `There is no refund '${refundId}'.`);
  if (record.status !== 'pending') {
    throw new GatewayError('refund_not_pending', `Refund ${refundId} is ${record.status} already.`);
  }
  return record;
}

export interface ApprovalOptions {
  /** How long to wait for requests in flight to settle before giving up. */
  waitMs: number;
}

/**
 * Approves a pending refund. The amount is recomputed once every request in flight has settled
 * (their holds are gone), then deducted in one script that checks nothing moved in between;
 * if something did, the computation starts again.
 */
export async function approveRefund(
  scripts: Scripts,
  redis: Redis,
  refundId: string,
  options: ApprovalOptions,
): Promise<RefundRecord> {
  const record = await pendingRefund(redis, refundId);
  const deadline = Date.now() + options.waitMs;
  for (let pause = 10; Date.now() < deadline; pause = Math.min(pause * 2, 500)) {
    const approved = await tryApprove(scripts, record);
    if (approved) {
      await indexRefund(redis, approved, 'pending');
      return approved;
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
  throw new GatewayError(
    'requests_in_flight',
    'Requests of this account are still in flight; approve again once they have settled.',
    { retryAfterSeconds: 5 },
  );
}

async function tryApprove(scripts: Scripts, record: RefundRecord) {
  const now = Date.now();
  const state = await readAccountState(scripts, record.account_id, now);
  if (state?.pendingRefundId !== record.id) {
    throw new GatewayError('refund_not_pending', `Refund ${record.id} is not pending.`);
  }
  if (state.inFlight > 0) return undefined;

  const parts = refundableParts(state.orders, state.paidSpentNano, now);
  const amount = totalNano(parts);
  const approved: RefundRecord = {
    ...record,
    status: 'approved',
    amount: formatUsd(amount),
    breakdown: parts.map((p) => ({
      order_id: p.orderId,
      method: p.method,
      amount: formatUsd(p.amountNano),
    })),
    decided_at: new Date(now).toISOString(),
  };
  const k = accountKeys(record.account_id);
  const code = (await scripts.run(
    'approve_refund',
    [k.account, k.refunds, k.orderRefunded, k.holds],
    [
      record.id,
      now,
      state.paidSpentNano.toString(),
      amount.toString(),
      JSON.stringify(approved),
      ...parts.flatMap((p) => [p.orderId, p.amountNano.toString()]),
    ],
  )) as DecideRefundCode;
  if (code === DecideRefundCode.Done) return approved;
  if (code === DecideRefundCode.NotPending) {
    throw new GatewayError('refund_not_pending', `Refund ${record.id} is not pending.`);
  }
  return undefined;
}

/** Rejects a pending refund: the account may call and top up again; nothing else changes. */
export async function rejectRefund(
  scripts: Scripts,
  redis: Redis,
  refundId: string,
  reason: string,
): Promise<RefundRecord> {
  const record = await pendingRefund(redis, refundId);
  const rejected: RefundRecord = {
    ...record,
    status: 'rejected',
    rejection_reason: reason,
    decided_at: new Date().toISOString(),
  };
  const k = accountKeys(record.account_id);
  const code = await scripts.run(
    'reject_refund',
    [k.account, k.refunds],
    [record.id, JSON.stringify(rejected)],
  );
  if (code !== DecideRefundCode.Done) {
    throw new GatewayError('refund_not_pending', `Refund ${record.id} is not pending.`);
  }
  await indexRefund(redis, rejected, 'pending');
  return rejected;
}
