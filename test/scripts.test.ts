import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { grantCredits, grantPack, PACK_VALIDITY_MS } from '../src/accounts/grants.js';
import { createAccount, setSuspension, topUp } from '../src/accounts/operations.js';
import { readAccountState } from '../src/accounts/state.js';
import { AdmitCode, admit, releaseHold } from '../src/admission/admit.js';
import { hashApiKey } from '../src/auth/api-keys.js';
import { GatewayError } from '../src/errors.js';
import { createMetrics } from '../src/metrics/metrics.js';
import { type Charge, SettleCode, settle } from '../src/settlement/settle.js';
import { accountKeys } from '../src/store/keys.js';
import { Scripts } from '../src/store/scripts.js';
import { TestRedis } from './support/redis.js';

const PRICES = { uncached_input: 300_000, cached_input: 6_000, output: 1_200_000 };
const KEY = 'lcgw.acct.secret';

let server: TestRedis;
let redis: Redis;
let scripts: Scripts;
let seq = 0;

beforeAll(async () => {
  server = await new TestRedis().start();
  redis = new Redis(server.url);
  scripts = new Scripts(redis, createMetrics());
  await scripts.load();
});

afterAll(async () => {
  redis.disconnect();
  await server.stop();
});

beforeEach(async () => {
  await redis.flushall();
  await createAccount(scripts, 'acct');
  await redis.hset(accountKeys('acct').keys, hashApiKey(KEY), 'key_1');
});

function admitOnce(options: { hold?: bigint; holds?: boolean; key?: string; id?: string } = {}) {
  const requestId = options.id ?? `req_${++seq}`;
  return admit(scripts, {
    key: { accountId: 'acct', hash: hashApiKey(options.key ?? KEY) },
    requestId,
    nowMs: Date.now(),
    holdNano: options.hold ?? 1_000_000n,
    holdLifetimeMs: 60_000,
    holds: options.holds ?? true,
  }).then(() => requestId);
}

async function admitCode(options: Parameters<typeof admitOnce>[0] = {}): Promise<number> {
  try {
    await admitOnce(options);
    return AdmitCode.Admitted;
  } catch (error) {
    const code = (error as GatewayError).code;
    const codes: Record<string, AdmitCode> = {
      invalid_api_key: AdmitCode.UnknownKey,
      account_suspended: AdmitCode.Suspended,
      refund_pending: AdmitCode.RefundPending,
      insufficient_balance: AdmitCode.InsufficientBalance,
      balance_reserved: AdmitCode.BalanceReserved,
    };
    return codes[code] ?? 0;
  }
}

function charge(
  requestId: string,
  counts = { uncached: 600_000, cached: 400_000, output: 500_000 },
  heldNano = '0',
) {
  return {
    accountId: 'acct',
    requestId,
    model: 'LongCat-2.0',
    createdAtMs: Date.now(),
    counts: { uncached_input: counts.uncached, cached_input: counts.cached, output: counts.output },
    prices: PRICES,
    estimated: false,
    heldNano,
  } satisfies Charge;
}

const order = (id: string, usd: bigint) => ({
  orderId: id,
  amountNano: usd,
  method: 'alipay' as const,
  paidAtGiven: false,
  paidAtMs: Date.now(),
});

async function state() {
  const s = await readAccountState(scripts, 'acct');
  if (!s) throw new Error('account missing');
  return s;
}

describe('admit', () => {
  it('returns each refusal code', async () => {
    expect(await admitCode({ key: 'lcgw.acct.other' })).toBe(AdmitCode.UnknownKey);
    expect(await admitCode()).toBe(AdmitCode.InsufficientBalance);

    await topUp(scripts, 'acct', order('o1', 1_500_000n));
    expect(await admitCode()).toBe(AdmitCode.Admitted);
    expect(await admitCode()).toBe(AdmitCode.Admitted);
    expect(await admitCode()).toBe(AdmitCode.BalanceReserved);

    await setSuspension(scripts, 'acct', 'abuse');
    expect(await admitCode()).toBe(AdmitCode.Suspended);
    await setSuspension(scripts, 'acct', '');
    await redis.hset(accountKeys('acct').account, 'refund', 'rf_1');
    expect(await admitCode()).toBe(AdmitCode.RefundPending);
  });

  it('admits on the plain rule when holds are off, and still records the request', async () => {
    await topUp(scripts, 'acct', order('o1', 1n));
    expect(await admitCode({ holds: false, hold: 10n ** 12n })).toBe(AdmitCode.Admitted);
    expect(await admitCode({ holds: false, hold: 10n ** 12n })).toBe(AdmitCode.Admitted);
    expect((await state()).inFlight).toBe(2);
  });

  it('lets holds lapse after their lifetime', async () => {
    await topUp(scripts, 'acct', order('o1', 1_000_000n));
    const k = accountKeys('acct');
    await redis.zadd(k.holds, Date.now() - 1, 'req_crashed|1000000');
    await redis.hset(k.account, 'held', '1000000');
    expect(await admitCode()).toBe(AdmitCode.Admitted);
    expect(await redis.zscore(k.holds, 'req_crashed|1000000')).toBeNull();
    expect(await redis.hget(k.account, 'held')).toBe('1000000');
  });

  it('admits on valid pack tokens at zero balance', async () => {
    await grantPack(scripts, 'acct', { packId: 'p1', tokens: 10, purchasedAtMs: undefined });
    expect(await admitCode()).toBe(AdmitCode.Admitted);
  });
});

describe('release', () => {
  it('returns 1 for a hold it released and 0 when there was none', async () => {
    await topUp(scripts, 'acct', order('o1', 5_000_000n));
    const requestId = await admitOnce({ hold: 2_000_000n });
    const k = accountKeys('acct');
    const release = () => scripts.run('release', [k.account, k.holds], [requestId, '2000000']);
    expect(await release()).toBe(1);
    expect(await release()).toBe(0);
    await releaseHold(scripts, 'acct', 'req_unknown', 5n);
    expect(await redis.hget(k.account, 'held')).toBe('0');
  });
});

describe('settle', () => {
  it('bills once per request id and releases the hold', async () => {
    await topUp(scripts, 'acct', order('o1', 10n ** 9n));
    const requestId = await admitOnce({ hold: 900_000_000n });

    const first = await settle(scripts, charge(requestId, undefined, '900000000'));
    const again = await settle(scripts, charge(requestId, undefined, '900000000'));
    expect(first.code).toBe(SettleCode.Settled);
    expect(first.costNano).toBe(782_400_000n);
    expect(again.code).toBe(SettleCode.AlreadySettled);

    const s = await state();
    expect(s.paidNano).toBe(217_600_000n);
    expect(s.inFlight).toBe(0);
    expect(await redis.hget(accountKeys('acct').account, 'held')).toBe('0');
    expect(await redis.xlen(accountKeys('acct').usage)).toBe(1);
  });

  it('burns packs, then credits, then paid money, in that order', async () => {
    await topUp(scripts, 'acct', order('o1', 10n ** 9n));
    await grantCredits(scripts, 'acct', {
      grantId: 'g1',
      amountNano: 100_000_000n,
      expiresAtMs: undefined,
    });
    await grantPack(scripts, 'acct', { packId: 'p1', tokens: 700_000, purchasedAtMs: undefined });

    // The pack covers 600,000 uncached and 100,000 cached; 300,000 cached cost $0.0018 and
    // 500,000 output $0.60. Credits pay $0.10, paid money the remaining $0.5018.
    const result = await settle(scripts, charge('req_mix'));
    expect(result).toMatchObject({
      costNano: 601_800_000n,
      packTokens: 700_000,
      fromCreditsNano: 100_000_000n,
      fromPaidNano: 501_800_000n,
    });
    const s = await state();
    expect(s.packs).toEqual([]);
    expect(s.creditsNano).toBe(0n);
    expect(s.paidNano).toBe(498_200_000n);
  });

  it('spends the earliest-expiring pack and credit grant first, and ignores expired ones', async () => {
    const day = 24 * 3600 * 1000;
    const soon = new Date(Date.now() + day).toISOString();
    const later = new Date(Date.now() + 2 * day).toISOString();
    const past = new Date(Date.now() - PACK_VALIDITY_MS - day).toISOString();
    await grantPack(scripts, 'acct', { packId: 'late', tokens: 100, purchasedAtMs: undefined });
    await grantPack(scripts, 'acct', {
      packId: 'early',
      tokens: 100,
      purchasedAtMs: Date.parse(past),
    });
    await grantCredits(scripts, 'acct', {
      grantId: 'g_later',
      amountNano: 10n ** 9n,
      expiresAtMs: Date.parse(later),
    });
    await grantCredits(scripts, 'acct', {
      grantId: 'g_soon',
      amountNano: 1_000n,
      expiresAtMs: Date.parse(soon),
    });
    await grantCredits(scripts, 'acct', {
      grantId: 'g_gone',
      amountNano: 10n ** 9n,
      expiresAtMs: Date.now() - 1000,
    });

    const result = await settle(scripts, charge('req_1', { uncached: 150, cached: 0, output: 10 }));
    // The expired pack is gone; the other covers 100 tokens. 50 uncached tokens at 300
    // nano-dollars and 10 output tokens at 1,200 cost 27,000: the soon-expiring grant pays
    // its 1,000, the later one the rest.
    expect(result.packTokens).toBe(100);
    expect(result.costNano).toBe(27_000n);
    const s = await state();
    expect(s.packs.map((p) => p.packId)).toEqual([]);
    expect(s.creditsNano).toBe(10n ** 9n + 1_000n - 27_000n);
    const left = await redis.hgetall(accountKeys('acct').grantLeft);
    expect(left).toEqual({ g_later: String(10n ** 9n - 26_000n) });
  });

  it('lets the request that crosses zero take the paid balance negative', async () => {
    await topUp(scripts, 'acct', order('o1', 100_000_000n));
    await settle(scripts, charge('req_big'));
    expect((await state()).paidNano).toBe(100_000_000n - 782_400_000n);
  });
});

describe('top_up', () => {
  it('returns each code', async () => {
    expect(await topUp(scripts, 'acct', order('o1', 5n))).toBe(true);
    expect(await topUp(scripts, 'acct', order('o1', 5n))).toBe(false);
    await expect(topUp(scripts, 'acct', order('o1', 6n))).rejects.toMatchObject({
      code: 'idempotency_conflict',
    });
    await expect(topUp(scripts, 'nobody', order('o2', 5n))).rejects.toMatchObject({
      code: 'account_not_found',
    });
    await redis.hset(accountKeys('acct').account, 'refund', 'rf_1');
    await expect(topUp(scripts, 'acct', order('o3', 5n))).rejects.toMatchObject({
      code: 'refund_pending',
    });
    expect((await state()).paidNano).toBe(5n);
  });
});

describe('create_account, set_suspension, grants', () => {
  it('returns each code', async () => {
    expect(await createAccount(scripts, 'acct')).toBe(false);
    expect(await createAccount(scripts, 'fresh')).toBe(true);
    await expect(setSuspension(scripts, 'nobody', 'x')).rejects.toMatchObject({
      code: 'account_not_found',
    });

    const grant = { grantId: 'g', amountNano: 5n, expiresAtMs: undefined };
    expect(await grantCredits(scripts, 'acct', grant)).toBe(true);
    expect(await grantCredits(scripts, 'acct', grant)).toBe(false);
    await expect(grantCredits(scripts, 'acct', { ...grant, amountNano: 6n })).rejects.toMatchObject(
      {
        code: 'idempotency_conflict',
      },
    );
    await expect(grantCredits(scripts, 'nobody', grant)).rejects.toBeInstanceOf(GatewayError);

    const pack = { packId: 'p', tokens: 5, purchasedAtMs: undefined };
    expect(await grantPack(scripts, 'acct', pack)).toBe(true);
    expect(await grantPack(scripts, 'acct', pack)).toBe(false);
    await expect(grantPack(scripts, 'acct', { ...pack, tokens: 6 })).rejects.toMatchObject({
      code: 'idempotency_conflict',
    });
    await expect(grantPack(scripts, 'nobody', pack)).rejects.toMatchObject({
      code: 'account_not_found',
    });
  });
});

describe('account_state', () => {
  it('returns an empty reply for a missing account', async () => {
    expect(await readAccountState(scripts, 'nobody')).toBeUndefined();
  });
});
