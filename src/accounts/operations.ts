import type { Redis } from 'ioredis';
import { generateApiKey, hashApiKey } from '../auth/api-keys.js';
import { GatewayError } from '../errors.js';
import { accountKeys, keyIndexKey } from '../store/keys.js';
import type { Scripts } from '../store/scripts.js';

function noAccount(accountId: string): GatewayError {
  return new GatewayError('account_not_found', `There is no account '${accountId}'.`);
}

/** Creates an empty account; false when the id is taken. */
export async function createAccount(scripts: Scripts, accountId: string): Promise<boolean> {
  const reply = await scripts.run('create_account', [accountKeys(accountId).account], [Date.now()]);
  return reply === 1;
}

/**
 * Issues an API key. Only its hash is stored, in the account's slot where `admit` checks it;
 * the index from key id to account lets an operator revoke a key by id.
 */
export async function createKey(redis: Redis, accountId: string) {
  const k = accountKeys(accountId);
  if ((await redis.exists(k.account)) === 0) throw noAccount(accountId);

  const { keyId, key } = generateApiKey(accountId);
  const hash = hashApiKey(key);
  await redis.set(keyIndexKey(keyId), `${accountId}|${hash}`);
  await redis.hset(k.keys, hash, keyId);
  return { id: keyId, key };
}

/** Revokes a key: the next request made with it, on any gateway instance, is refused. */
export async function revokeKey(redis: Redis, keyId: string): Promise<void> {
  const entry = await redis.get(keyIndexKey(keyId));
  if (!entry) throw new GatewayError('key_not_found', `There is no key '${keyId}'.`);

  const [accountId = '', hash = ''] = entry.split('|');
  await redis.hdel(accountKeys(accountId).keys, hash);
  await redis.del(keyIndexKey(keyId));
}

/** Mirrors the return codes in the header of `lua/top_up.lua`. */
export enum TopUpCode {
  Credited = 1,
  Replayed = 2,
  NoAccount = -1,
  RefundPending = -2,
  Conflict = -3,
}

export interface TopUp {
  orderId: string;
  amountNano: bigint;
  method: 'alipay' | 'wechat_pay';
  /** Whether the operator gave `paid_at`; if so it is part of the order's identity. */
  paidAtGiven: boolean;
  paidAtMs: number;
}

/** Credits a paid order once; returns true when credited now, false for a replay. */
export async function topUp(scripts: Scripts, accountId: string, order: TopUp): Promise<boolean> {
  const k = accountKeys(accountId);
  const code = (await scripts.run(
    'top_up',
    [k.account, k.orders, k.orderTimes],
    [
      order.orderId,
      order.amountNano.toString(),
      order.method,
      order.paidAtGiven ? String(order.paidAtMs) : '',
      order.paidAtMs,
    ],
  )) as TopUpCode;

  switch (code) {
    case TopUpCode.Credited:
      return true;
    case TopUpCode.Replayed:
      return false;
    case TopUpCode.NoAccount:
      throw noAccount(accountId);
    case TopUpCode.RefundPending:
      throw new GatewayError('refund_pending', 'A refund is under review; top-ups are refused.');
    case TopUpCode.Conflict:
      throw new GatewayError(
        'idempotency_conflict',
        `Order '${order.orderId}' was credited before with other content.`,
      );
    default:
      throw new GatewayError('internal_error', `top_up returned an unknown code ${code}.`);
  }
}

/** Turns an operator's suspension on (with a reason) or off (`reason` empty). */
export async function setSuspension(scripts: Scripts, accountId: string, reason: string) {
  const code = await scripts.run('set_suspension', [accountKeys(accountId).account], [reason]);
  if (code !== 1) throw noAccount(accountId);
}
