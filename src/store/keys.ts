import { GatewayError } from '../errors.js';

/**
 * Redis key names. Every key of one account carries the account id as its hash tag (`{id}`), so
 * each Lua script touches a single slot and the layout runs unchanged on Redis Cluster.
 */
export const ACCOUNT_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function accountKeys(accountId: string) {
  // A brace would move the hash tag; such an id can name no account, so it is refused early.
  if (!ACCOUNT_ID.test(accountId)) {
    throw new GatewayError('account_not_found', `There is no account '${accountId}'.`);
  }
  const base = `lc:{${accountId}}`;
  return {
    account: `${base}:account`,
    keys: `${base}:keys`,
    holds: `${base}:holds`,
    packs: `${base}:packs`,
    packLeft: `${base}:pack_left`,
    packGrants: `${base}:pack_grants`,
    grants: `${base}:grants`,
    grantLeft: `${base}:grant_left`,
    creditGrants: `${base}:credit_grants`,
    orders: `${base}:orders`,
    orderTimes: `${base}:order_times`,
    orderRefunded: `${base}:order_refunded`,
    refunds: `${base}:refunds`,
    usage: `${base}:usage`,
    settled: (requestId: string) => `${base}:settled:${requestId}`,
    month: (yyyyMm: string) => `${base}:month:${yyyyMm}`,
  };
}

export type AccountKeys = ReturnType<typeof accountKeys>;

/**
 * The six keys that open the KEYS of every script that spends or reads balances, in the order
 * `lua/includes/refresh_spending.lua` expects them.
 */
export function spendingKeys(k: AccountKeys): string[] {
  return [k.account, k.holds, k.packs, k.packLeft, k.grants, k.grantLeft];
}

/** Key id -> "account|sha256", so that an operator can revoke a key by its id alone. */
export function keyIndexKey(keyId: string): string {
  return `lc:key:${keyId}`;
}

/** Refund id -> account id, and the operator's list of refunds by status. */
export function refundIndexKey(refundId: string): string {
  return `lc:refund:${refundId}`;
}

export function refundListKey(status: string): string {
  return `lc:refunds:${status}`;
}
