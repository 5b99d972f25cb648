import type { ParsedKey } from '../auth/api-keys.js';
import { GatewayError, StoreUnavailableError } from '../errors.js';
import { kindCostNano } from '../money/cost.js';
import type { PicoPerToken } from '../money/prices.js';
import { accountKeys, spendingKeys } from '../store/keys.js';
import type { Scripts } from '../store/scripts.js';

/** Mirrors the return codes in the header of `lua/admit.lua`. */
export enum AdmitCode {
  Admitted = 1,
  UnknownKey = -1,
  Suspended = -2,
  RefundPending = -3,
  InsufficientBalance = -4,
  BalanceReserved = -5,
}

/** Maps a refusal code of `admit` to the error the client receives. */
export function admitError(code: AdmitCode): GatewayError {
  switch (code) {
    case AdmitCode.UnknownKey:
      return new GatewayError('invalid_api_key', 'The API key is missing, unknown or revoked.');
    case AdmitCode.Suspended:
      return new GatewayError('account_suspended', 'This account is suspended by the operator.');
    case AdmitCode.RefundPending:
      return new GatewayError(
        'refund_pending',
        'A refund request is under review; API calls resume once it is settled.',
      );
    case AdmitCode.InsufficientBalance:
      return new GatewayError(
        'insufficient_balance',
        'The balance is $0 or below and no token pack is left. Top up to continue.',
      );
    case AdmitCode.BalanceReserved:
      return new GatewayError(
        'balance_reserved',
        'The balance is held by requests in flight; retry when they finish.',
        { retryAfterSeconds: 1 },
      );
    default:
      return new GatewayError('internal_error', `admit returned an unknown code ${code}.`);
  }
}

/** Bytes of request body assumed per input token when a hold is estimated: deliberately low. */
const HOLD_BYTES_PER_TOKEN = 3;

/**
 * The most a request may cost: its input, estimated from the body's size at the uncached price,
 * plus `max_tokens` (or the model's default maximum) at the output price. Holding this bounds
 * the overdraft that concurrent requests could otherwise run up.
 */
export function holdNano(bodyBytes: number, maxOutputTokens: number, prices: PicoPerToken) {
  const inputTokens = Math.ceil(bodyBytes / HOLD_BYTES_PER_TOKEN);
  return (
    kindCostNano(inputTokens, prices.uncached_input) + kindCostNano(maxOutputTokens, prices.output)
  );
}

export interface AdmitRequest {
  key: ParsedKey;
  requestId: string;
  nowMs: number;
  /** The hold to place: the worst cost when holds are on, 0 when they are off. */
  holdNano: bigint;
  holdLifetimeMs: number;
  holds: boolean;
}

/**
 * Authenticates the key and admits the request in one round trip. Fails closed: if Redis cannot
 * answer, nobody can tell whether the account may spend, and forwarding would let an outage be
 * spent without limit, so the request is refused with 503 and never reaches the upstream.
 */
export async function admit(scripts: Scripts, request: AdmitRequest): Promise<{ keyId: string }> {
  const k = accountKeys(request.key.accountId);
  const keys = [...spendingKeys(k), k.keys];
  const args = [
    request.key.hash,
    request.requestId,
    request.nowMs,
    request.holdNano.toString(),
    request.holdLifetimeMs,
    request.holds ? '1' : '0',
  ];

  let reply: unknown;
  try {
    reply = await scripts.run('admit', keys, args);
  } catch (error) {
    throw new StoreUnavailableError(error);
  }

  const [code, keyId] = reply as [AdmitCode, string];
  if (code !== AdmitCode.Admitted) throw admitError(code);
  return { keyId };
}

/**
 * Releases the hold of a request that ends unbilled. A failure here costs nothing but
 * availability, since the hold lapses on its own after the request timeout, so it is only
 * reported to the caller, never retried.
 */
export async function releaseHold(
  scripts: Scripts,
  accountId: string,
  requestId: string,
  holdNano: bigint,
): Promise<void> {
  const k = accountKeys(accountId);
  await scripts.run('release', [k.account, k.holds], [requestId, holdNano.toString()]);
}
