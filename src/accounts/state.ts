import { formatUsd } from '../money/nano.js';
import { accountKeys, spendingKeys } from '../store/keys.js';
import type { Scripts } from '../store/scripts.js';
import { type PaidOrder, refundableParts, totalNano } from './refundable.js';

/** An account as `lua/account_state.lua` reads it, with amounts as integers. */
export interface AccountState {
  id: string;
  paidNano: bigint;
  creditsNano: bigint;
  balanceNano: bigint;
  paidSpentNano: bigint;
  suspendedReason: string | undefined;
  pendingRefundId: string | undefined;
  packs: { packId: string; tokensLeft: number; expiresAtMs: number }[];
  orders: PaidOrder[];
  inFlight: number;
}

interface RawState {
  account: Record<string, string>;
  packs: [string, string, string][] | Record<string, never>;
  orders: [string, string, string, string][] | Record<string, never>;
  in_flight: number;
}

/** Reads an account's current state, or `undefined` when there is no such account. */
export async function readAccountState(
  scripts: Scripts,
  accountId: string,
  nowMs = Date.now(),
): Promise<AccountState | undefined> {
  const k = accountKeys(accountId);
  const keys = [...spendingKeys(k), k.orders, k.orderTimes, k.orderRefunded];
  const reply = (await scripts.run('account_state', keys, [nowMs])) as string;
  if (reply === '') return undefined;

  // cjson encodes an empty Lua table as {}, not [].
  const raw = JSON.parse(reply) as RawState;
  const fields = raw.account;
  return {
    id: accountId,
    paidNano: BigInt(fields.paid ?? '0'),
    creditsNano: BigInt(fields.credits ?? '0'),
    balanceNano: BigInt(fields.balance ?? '0'),
    paidSpentNano: BigInt(fields.paid_spent ?? '0'),
    suspendedReason: fields.suspended,
    pendingRefundId: fields.refund,
    packs: Array.isArray(raw.packs)
      ? raw.packs.map(([packId, left, expires]) => ({
          packId,
          tokensLeft: Number(left),
          expiresAtMs: Number(expires),
        }))
      : [],
    orders: Array.isArray(raw.orders) ? raw.orders.map(toPaidOrder) : [],
    inFlight: raw.in_flight,
  };
}

function toPaidOrder([orderId, identity, paidAt, refunded]: [string, string, string, string]) {
  const [amount = '0', method = ''] = identity.split('|');
  return {
    orderId,
    method,
    amountNano: BigInt(amount),
    paidAtMs: Number(paidAt),
    refundedNano: BigInt(refunded),
  };
}

/** The estimate of what a refund would return now. */
export function refundableNano(state: AccountState, nowMs = Date.now()): bigint {
  return totalNano(refundableParts(state.orders, state.paidSpentNano, nowMs));
}

/** The contract's account view, as both APIs return it. */
export interface AccountView {
  id: string;
  balance: string;
  paid_balance: string;
  credits: string;
  token_packs: { pack_id: string; tokens_remaining: number; expires_at: string }[];
  suspended: boolean;
  suspension_reason: string | null;
  refund_pending: boolean;
  refundable: string;
}

/** The contract's account view. */
export function accountView(state: AccountState, nowMs = Date.now()): AccountView {
  return {
    id: state.id,
    balance: formatUsd(state.balanceNano),
    paid_balance: formatUsd(state.paidNano),
    credits: formatUsd(state.creditsNano),
    token_packs: state.packs.map((pack) => ({
      pack_id: pack.packId,
      tokens_remaining: pack.tokensLeft,
      expires_at: new Date(pack.expiresAtMs).toISOString(),
    })),
    suspended: state.suspendedReason !== undefined,
    suspension_reason: state.suspendedReason ?? null,
    refund_pending: state.pendingRefundId !== undefined,
    refundable: formatUsd(refundableNano(state, nowMs)),
  };
}
