import { createHash, randomBytes } from 'node:crypto';
import { ACCOUNT_ID } from '../store/keys.js';

const KEY_PREFIX = 'lcgw';

/**
 * A client API key names its own account: `lcgw.<account id>.<secret>`. The gateway therefore
 * finds the account without a lookup, and `admit` checks the key's hash in the account's own
 * Redis slot, so a revoked key fails on its very next request on every gateway instance.
 */
export interface ParsedKey {
  accountId: string;
  /** sha256 of the whole key; only this is stored. */
  hash: string;
}

export function parseApiKey(key: string | undefined): ParsedKey | undefined {
  if (!key) return undefined;

  const [prefix, accountId, secret, extra] = key.split('.');
  if (prefix !== KEY_PREFIX || !accountId || !secret || extra !== undefined) return undefined;
  if (!ACCOUNT_ID.test(accountId)) return undefined;
  return { accountId, hash: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function generateApiKey(accountId: string): { keyId: string; key: string } {
  const keyId = `key_${randomBytes(9).toString('base64url')}`;
  const key = `${KEY_PREFIX}.${accountId}.${randomBytes(24).toString('base64url')}`;
  return { keyId, key };
}

/** The client's key from `Authorization: Bearer …`, or Anthropic's `x-api-key`. */
export function presentedKey(
  authorization: string | undefined,
  xApiKey: string | undefined,
): string | undefined {
  if (authorization?.startsWith('Bearer ')) return authorization.slice(7).trim();
  return xApiKey?.trim() || undefined;
}
