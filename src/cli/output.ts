/**
 * Human-readable renderings of the operator API's replies. Amounts stay the API's decimal
 * strings throughout: nothing here turns money into a JS number.
 */

import type { createKey } from '../accounts/operations.js';
import type { RefundRecord } from '../accounts/refunds.js';
import type { AccountView } from '../accounts/state.js';
import type { UsagePage } from '../accounts/usage.js';

export type { AccountView, UsagePage };

/** A new API key, as `POST /admin/accounts/{id}/keys` returns it once. */
export type NewKey = Awaited<ReturnType<typeof createKey>>;

/** A refund record, as the refund routes return it. */
export type Refund = RefundRecord;

export interface RefundList {
  data: Refund[];
}

/** An approved refund: amount and breakdown are always set. */
export type RefundApproval = Required<Pick<RefundRecord, 'id' | 'amount' | 'breakdown'>> & {
  status: 'approved';
};

/** `label: value` lines with the values in one column; an empty label continues the line above. */
export function aligned(fields: [label: string, value: string][]): string[] {
  const width = Math.max(...fields.map(([label]) => label.length)) + 2;
  return fields.map(([label, value]) =>
    `${(label ? `${label}:` : '').padEnd(width)}${value}`.trimEnd(),
  );
}

/** Rows padded into columns; the last column is left ragged. */
export function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

export function usd(amount: string): string {
  return `${amount} USD`;
}

function yesNo(flag: boolean): string {
  return flag ? 'yes' : 'no';
}

function packLines(packs: AccountView['token_packs']): string[] {
  if (packs.length === 0) return ['none'];
  return packs.map(
    (pack) => `${pack.pack_id}: ${pack.tokens_remaining} tokens left, expires ${pack.expires_at}`,
  );
}

/** The account view as aligned lines; a second token pack goes on a line of its own. */
export function accountLines(view: AccountView): string[] {
  const [firstPack = 'none', ...otherPacks] = packLines(view.token_packs);
  const suspended = view.suspension_reason
    ? `yes (${view.suspension_reason})`
    : yesNo(view.suspended);
  return aligned([
    ['account', view.id],
    ['balance', usd(view.balance)],
    ['paid balance', usd(view.paid_balance)],
    ['credits', usd(view.credits)],
    ['token packs', firstPack],
    ...otherPacks.map((pack): [string, string] => ['', pack]),
    ['suspended', suspended],
    ['refund pending', yesNo(view.refund_pending)],
    ['refundable', usd(view.refundable)],
  ]);
}

export function newKeyLines(account: string, key: NewKey): string[] {
  return [
    ...aligned([
      ['account', account],
      ['key id', key.id],
      ['key', key.key],
    ]),
    'The key is shown only this once: the gateway keeps its hash alone. Hand it over now.',
  ];
}

export function usageLines(page: UsagePage): string[] {
  if (page.data.length === 0) return ['No usage recorded.'];
  const header = ['CREATED', 'MODEL', 'UNCACHED', 'CACHED', 'OUTPUT', 'PACK', 'COST'];
  const rows = page.data.map((r) => [
    r.created_at,
    r.model,
    String(r.uncached_input_tokens),
    String(r.cached_input_tokens),
    String(r.output_tokens),
    String(r.pack_tokens),
    r.estimated ? `${r.cost} (estimated)` : r.cost,
  ]);
  const more = page.next_cursor ? [`More: add --cursor ${page.next_cursor}`] : [];
  return [...table([header, ...rows]), ...more];
}

export function refundListLines(refunds: Refund[]): string[] {
  if (refunds.length === 0) return ['No refunds.'];
  const header = ['ID', 'ACCOUNT', 'STATUS', 'AMOUNT', 'REQUESTED', 'REASON'];
  // A pending refund has only an estimate; an approved one the amount actually paid back.
  const rows = refunds.map((r) => [
    r.id,
    r.account_id,
    r.status,
    r.amount ?? r.estimated_amount,
    r.created_at,
    r.reason,
  ]);
  return table([header, ...rows]);
}

export function approvalLines(approval: RefundApproval): string[] {
  const parts = approval.breakdown.map(
    (part) => `  ${part.amount} USD back to order ${part.order_id} (${part.method})`,
  );
  return [`Approved refund ${approval.id}: pay back ${usd(approval.amount)}.`, ...parts];
}
