import { GatewayError } from '../errors.js';
import { accountKeys } from '../store/keys.js';
import type { Scripts } from '../store/scripts.js';

/** Mirrors the return codes shared by `lua/grant_credits.lua` and `lua/grant_pack.lua`. */
export enum GrantCode {
  Granted = 1,
  Replayed = 2,
  NoAccount = -1,
  Conflict = -3,
}

/** A token pack is valid for 30 days from its purchase (BILLING.md). */
export const PACK_VALIDITY_MS = 30 * 24 * 3600 * 1000;

/** Scores a grant that never expires: 9999-12-31, beyond any `now` the scripts compare with. */
const NEVER_MS = Date.UTC(9999, 11, 31);

function granted(code: GrantCode, accountId: string, what: string, id: string): boolean {
  switch (code) {
    case GrantCode.Granted:
      return true;
    case GrantCode.Replayed:
      return false;
    case GrantCode.NoAccount:
      throw new GatewayError('account_not_found', `There is no account '${accountId}'.`);
    case GrantCode.Conflict:
      throw new GatewayError(
        'idempotency_conflict',
        `${what} '${id}' was granted before with other content.`,
      );
    default:
      throw new GatewayError('internal_error', `The grant script returned ${code}.`);
  }
}

export interface CreditGrant {
  grantId: string;
  amountNano: bigint;
  /** Part of the grant's identity; absent for a grant that never expires. */
  expiresAtMs: number | undefined;
}

/** Grants complimentary credits once per grant id; true when granted now. */
export async function grantCredits(scripts: Scripts, accountId: string, grant: CreditGrant) {
  const k = accountKeys(accountId);
  const expiresMs = grant.expiresAtMs ?? NEVER_MS;
  const identity = `${grant.amountNano}|${grant.expiresAtMs ?? ''}`;
  const code = (await scripts.run(
    'grant_credits',
    [k.account, k.grants, k.grantLeft, k.creditGrants],
    [grant.grantId, grant.amountNano.toString(), expiresMs, identity],
  )) as GrantCode;
  return granted(code, accountId, 'Credit grant', grant.grantId);
}

export interface PackGrant {
  packId: string;
  tokens: number;
  /** Part of the pack's identity when given; absent means now. */
  purchasedAtMs: number | undefined;
}

/** Grants a token pack once per pack id; true when granted now. */
export async function grantPack(scripts: Scripts, accountId: string, pack: PackGrant) {
  const k = accountKeys(accountId);
  const purchasedMs = pack.purchasedAtMs ?? Date.now();
  const identity = `${pack.tokens}|${pack.purchasedAtMs ?? ''}`;
  const code = (await scripts.run(
    'grant_pack',
    [k.account, k.packs, k.packLeft, k.packGrants],
    [pack.packId, pack.tokens, purchasedMs + PACK_VALIDITY_MS, identity],
  )) as GrantCode;
  return granted(code, accountId, 'Token pack', pack.packId);
}
