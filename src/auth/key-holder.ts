import type { Redis } from 'ioredis';
import { GatewayError, StoreUnavailableError } from '../errors.js';
import { accountKeys } from '../store/keys.js';
import { parseApiKey, presentedKey } from './api-keys.js';

/**
 * Authenticates a key holder for the account API and returns the account id. The model API
 * does the same check inside `admit`, in the same round trip as admission.
 */
export async function authenticateKeyHolder(
  redis: Redis,
  authorization: string | undefined,
  xApiKey: string | undefined,
): Promise<string> {
  const key = parseApiKey(presentedKey(authorization, xApiKey));
  if (!key) throw new GatewayError('invalid_api_key', 'The API key is missing or malformed.');

  let known: number;
  try {
    known = await redis.hexists(accountKeys(key.accountId).keys, key.hash);
  } catch (error) {
    throw new StoreUnavailableError(error);
  }
  if (known !== 1) throw new GatewayError('invalid_api_key', 'The API key is unknown or revoked.');
  return key.accountId;
}
