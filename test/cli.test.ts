import { execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RefundRecord as Refund } from '../src/accounts/refunds.js';
import type { AccountView } from '../src/accounts/state.js';
import { runCli } from '../src/cli/main.js';
import { sumUsd } from '../src/money/nano.js';
import { ADMIN_TOKEN, startTestGateway, type TestGateway } from './support/gateway.js';
import { freePort, TestRedis } from './support/redis.js';
import { FakeUpstream } from './support/upstream.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const execFileAsync = promisify(execFile);

/** An output stream that keeps what the CLI wrote. */
class Captured {
  text = '';

  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

interface CliRun {
  status: number;
  stdout: string;
  stderr: string;
}

let redis: TestRedis;
let upstream: FakeUpstream;
let gateway: TestGateway;

/** Runs the CLI in this process against the test gateway, as an operator with the right token. */
async function cli(
  args: string[],
  env: Record<string, string> = { ADMIN_TOKEN },
  adminUrl = gateway.adminUrl,
): Promise<CliRun> {
  const stdout = new Captured();
  const stderr = new Captured();
  const status = await runCli([...args, '--admin-url', adminUrl], { env, stdout, stderr });
  return { status, stdout: stdout.text, stderr: stderr.text };
}

/** Runs a command with `--json`, expects success and returns the one document it printed. */
async function cliJson<T>(...args: string[]): Promise<T> {
  const run = await cli([...args, '--json']);
  expect(run, run.stderr).toMatchObject({ status: 0, stderr: '' });
  return JSON.parse(run.stdout) as T;
}

function chat(key: string) {
  const client = new OpenAI({ apiKey: key, baseURL: `${gateway.publicUrl}/v1`, maxRetries: 0 });
  return client.chat.completions.create({
    model: 'LongCat-2.0',
    messages: [{ role: 'user', content: 'Hello' }],
  });
}

/** Creates an account with a key and a paid top-up through the CLI, as an operator would. */
async function fundedAccount(id: string, usd: string): Promise<string> {
  expect((await cli(['accounts', 'create', id])).status).toBe(0);
  const run = await cli(['topup', id, usd, '--order', `order-${id}`, '--method', 'wechat_pay']);
  expect(run.status, run.stderr).toBe(0);
  return (await cliJson<{ key: string }>('keys', 'create', id)).key;
}

async function requestRefund(key: string): Promise<Refund> {
  const reply = await gateway.call('/v1/account/refunds', {
    method: 'POST',
    key,
    body: JSON.stringify({ reason: 'leaving the service' }),
  });
  expect(reply.status).toBe(201);
  return (await reply.json()) as Refund;
}

beforeAll(async () => {
  redis = await new TestRedis().start();
  upstream = await new FakeUpstream().start();
  gateway = await startTestGateway({
    REDIS_URL: redis.url,
    UPSTREAM_OPENAI_URL: `${upstream.url}/openai`,
  });
}, 120_000);

afterAll(async () => {
  await gateway?.close();
  await upstream?.stop();
  await redis?.stop();
});

describe('operator CLI: an account life cycle', () => {
  let key = '';
  let keyId = '';

  it('accounts create prints the new account; creating it again is refused', async () => {
    const created = await cli(['accounts', 'create', 'acme']);
    expect(created).toMatchObject({ status: 0, stderr: '' });
    expect(created.stdout).toMatch(/^account: +acme$/m);
    expect(created.stdout).toMatch(/^balance: +0 USD$/m);

    const again = await cli(['accounts', 'create', 'acme']);
    expect(again.status).toBe(1);
    expect(again.stdout).toBe('');
    expect(again.stderr).toContain('409 account_exists');
    expect(again.stderr).toContain("The account 'acme' exists already.");
  });

  it('accounts show prints aligned field lines, and --json the API document as is', async () => {
    const shown = await cli(['accounts', 'show', 'acme']);
    expect(shown.status).toBe(0);
    const lines = shown.stdout.trimEnd().split('\n');
    const valueColumns = new Set(lines.map((line) => line.search(/(?<=: +)\S/)));
    expect(valueColumns.size).toBe(1);
    expect(shown.stdout).toMatch(/^token packs: +none$/m);
    expect(shown.stdout).toMatch(/^suspended: +no$/m);

    const view = await cliJson<AccountView>('accounts', 'show', 'acme');
    expect(view).toMatchObject({ id: 'acme', balance: '0', paid_balance: '0', credits: '0' });
    const direct = await gateway.admin<AccountView>('GET', '/admin/accounts/acme');
    expect(view).toEqual(direct.body);
  });

  it('keys create prints the key once, and the SDK can use it at once', async () => {
    const created = await cli(['keys', 'create', 'acme']);
    expect(created.status).toBe(0);
    expect(created.stdout).toContain('shown only this once');
    key = created.stdout.match(/^key: +(\S+)$/m)?.[1] ?? '';
    keyId = created.stdout.match(/^key id: +(\S+)$/m)?.[1] ?? '';
    expect(key).not.toBe('');
    expect(keyId).not.toBe('');

    // The key is recognised: the refusal is about money (402), not about the key (401).
    await expect(chat(key)).rejects.toMatchObject({ status: 402, code: 'insufficient_balance' });
  });

  it('topup credits an order once; the same order again exits 0 and credits nothing', async () => {
    const args = ['topup', 'acme', '10.50', '--order', 'ord-1', '--method', 'alipay'];
    const first = await cli(args);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toContain('Credited order ord-1: 10.50 USD to acme.');
    expect((await cliJson<AccountView>('accounts', 'show', 'acme')).paid_balance).toBe('10.5');

    const replay = await cli(args);
    expect(replay.status).toBe(0);
    expect(replay.stdout).toContain('Order ord-1 was credited before; nothing changed.');
    expect((await cliJson<AccountView>('accounts', 'show', 'acme')).paid_balance).toBe('10.5');

    const completion = await chat(key);
    expect(completion.choices[0]?.message.content).toContain('fake LongCat');
    const after = await cliJson<AccountView>('accounts', 'show', 'acme');
    expect(Number(after.balance)).toBeLessThan(10.5);
  });

  it('topup with a used order id and other content exits 1 with the conflict', async () => {
    const before = await cliJson<AccountView>('accounts', 'show', 'acme');
    const run = await cli(['topup', 'acme', '99', '--order', 'ord-1', '--method', 'alipay']);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('409 idempotency_conflict');
    expect(run.stderr).toContain("Order 'ord-1' was credited before with other content.");
    expect(await cliJson<AccountView>('accounts', 'show', 'acme')).toEqual(before);
  });

  it('passes AMOUNT as typed: exact past a double, refused below a nano', async () => {
    await cli(['accounts', 'create', 'gamma']);
    const exact = ['topup', 'gamma', '12345678.123456789', '--order', 'g-1', '--method', 'alipay'];
    expect((await cli(exact)).status).toBe(0);
    const view = await cliJson<AccountView>('accounts', 'show', 'gamma');
    expect(view.paid_balance).toBe('12345678.123456789');

    const tooFine = ['topup', 'gamma', '0.0000000001', '--order', 'g-2', '--method', 'alipay'];
    const run = await cli(tooFine);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('400 invalid_request');
    expect(run.stderr).toContain('amount:');
  });

  it('credits grant adds credits once per grant id', async () => {
    const before = await cliJson<AccountView>('accounts', 'show', 'acme');
    const args = ['credits', 'grant', 'acme', '2.5', '--id', 'welcome'];
    const granted = await cli([...args, '--expires', '2099-01-01T00:00:00Z']);
    expect(granted.status, granted.stderr).toBe(0);
    expect(granted.stdout).toContain('Granted 2.5 USD of credits to acme');

    const replay = await cli([...args, '--expires', '2099-01-01T00:00:00Z']);
    expect(replay.status).toBe(0);
    expect(replay.stdout).toContain('Grant welcome was made before; nothing changed.');
    const after = await cliJson<AccountView>('accounts', 'show', 'acme');
    expect(after.credits).toBe(sumUsd([before.credits, '2.5']));
    expect(after.balance).toBe(sumUsd([before.balance, '2.5']));
  });

  it('packs grant adds a token pack once per pack id', async () => {
    const args = ['packs', 'grant', 'acme', '1000000', '--id', 'pack-1'];
    const granted = await cli(args);
    expect(granted.status, granted.stderr).toBe(0);
    expect(granted.stdout).toContain('Granted pack pack-1: 1000000 tokens to acme.');
    expect(granted.stdout).toMatch(/^Pack pack-1: 1000000 tokens left, expires \S+\.$/m);
    expect((await cli(args)).stdout).toContain('Pack pack-1 was granted before');

    const view = await cliJson<AccountView>('accounts', 'show', 'acme');
    expect(view.token_packs).toEqual([
      expect.objectContaining({ pack_id: 'pack-1', tokens_remaining: 1_000_000 }),
    ]);
    expect((await cli(['accounts', 'show', 'acme'])).stdout).toMatch(
      /^token packs: +pack-1: 1000000 tokens left, expires \S+$/m,
    );
  });

  it('packs grant is refused for a pack that would have expired already', async () => {
    const args = ['packs', 'grant', 'acme', '1000', '--id', 'old-pack'];
    const run = await cli([...args, '--purchased-at', '2020-01-01T00:00:00Z']);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('expired already');
  });

  it('suspend refuses the next call with 403 account_suspended; resume admits again', async () => {
    const suspended = await cli(['suspend', 'acme', '--reason', 'chargeback review']);
    expect(suspended.status, suspended.stderr).toBe(0);
    expect((await cli(['accounts', 'show', 'acme'])).stdout).toMatch(
      /^suspended: +yes \(chargeback review\)$/m,
    );
    await expect(chat(key)).rejects.toMatchObject({ status: 403, code: 'account_suspended' });

    const resumed = await cli(['resume', 'acme']);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect((await cliJson<AccountView>('accounts', 'show', 'acme')).suspended).toBe(false);
    await expect(chat(key)).resolves.toMatchObject({ object: 'chat.completion' });
  });

  it('usage lists the metered requests, newest first', async () => {
    const page = await cliJson<{ data: { model: string }[] }>('usage', 'acme', '--limit', '1');
    expect(page.data).toHaveLength(1);
    const table = await cli(['usage', 'acme']);
    expect(table.status).toBe(0);
    expect(table.stdout).toMatch(/^CREATED +MODEL/);
    expect(table.stdout.match(/LongCat-2\.0/g)).toHaveLength(2);
  });

  it('keys revoke stops the key at once: the SDK call fails with 401', async () => {
    const revoked = await cli(['keys', 'revoke', keyId]);
    expect(revoked.status, revoked.stderr).toBe(0);
    expect(revoked.stdout).toContain(`Revoked key ${keyId}`);
    await expect(chat(key)).rejects.toMatchObject({ status: 401, code: 'invalid_api_key' });

    const again = await cli(['keys', 'revoke', keyId]);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('404 key_not_found');
  });

  it('refunds: a pending request is listed, and approving it prints the amount', async () => {
    const fresh = (await cliJson<{ key: string }>('keys', 'create', 'acme')).key;
    const requested = await requestRefund(fresh);
    expect(requested.status).toBe('pending');

    const pending = await cliJson<{ data: Refund[] }>('refunds', 'list', '--status', 'pending');
    expect(pending.data).toEqual([
      expect.objectContaining({ id: requested.id, account_id: 'acme', status: 'pending' }),
    ]);
    expect((await cli(['refunds', 'list', '--status', 'pending'])).stdout).toContain(requested.id);
    const blocked = await cli(['topup', 'acme', '1', '--order', 'ord-2', '--method', 'alipay']);
    expect(blocked.status).toBe(1);
    expect(blocked.stderr).toContain('403 refund_pending');

    const approved = await cli(['refunds', 'approve', requested.id]);
    expect(approved.status, approved.stderr).toBe(0);
    expect(approved.stdout).toContain(
      `Approved refund ${requested.id}: pay back ${requested.estimated_amount} USD.`,
    );
    expect(approved.stdout).toContain('back to order ord-1 (alipay)');
    const view = await cliJson<AccountView>('accounts', 'show', 'acme');
    expect(view).toMatchObject({ refund_pending: false, refundable: '0' });

    const again = await cli(['refunds', 'approve', requested.id]);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('409 refund_not_pending');
  });

  it('refunds reject closes the request and lets the account top up again', async () => {
    const key = await fundedAccount('beta', '5');
    const requested = await requestRefund(key);

    const rejected = await cli(['refunds', 'reject', requested.id, '--reason', 'duplicate']);
    expect(rejected.status, rejected.stderr).toBe(0);
    expect(rejected.stdout).toContain(`Rejected refund ${requested.id}`);
    const list = await cliJson<{ data: Refund[] }>('refunds', 'list', '--status', 'rejected');
    expect(list.data.map((refund) => refund.id)).toContain(requested.id);
    const topUp = await cli(['topup', 'beta', '1', '--order', 'ord-b2', '--method', 'alipay']);
    expect(topUp.status, topUp.stderr).toBe(0);
  });
});

describe('operator CLI: wrong usage and refusals', () => {
  it('an unknown command exits 2 with the usage text', async () => {
    const run = await cli(['frobnicate']);
    expect(run.status).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain("Unknown command 'frobnicate'.");
    expect(run.stderr).toContain('Usage: longcat-gateway <command>');
    expect(run.stderr).toContain('refunds reject ID --reason TEXT');
  });

  it('a missing argument or option exits 2 with the command’s usage line', async () => {
    const noId = await cli(['accounts', 'show']);
    expect(noId.status).toBe(2);
    expect(noId.stderr).toContain('accounts show: ID is missing.');
    expect(noId.stderr).toContain('Usage: longcat-gateway accounts show ID');

    const noOrder = await cli(['topup', 'acme', '5', '--method', 'alipay']);
    expect(noOrder.status).toBe(2);
    expect(noOrder.stderr).toContain('topup: --order is required.');

    const foreign = await cli(['resume', 'acme', '--reason', 'x']);
    expect(foreign.status).toBe(2);
    expect(foreign.stderr).toContain('resume takes no --reason.');

    const badMethod = await cli(['topup', 'acme', '5', '--order', 'o', '--method', 'card']);
    expect(badMethod.status).toBe(2);
    expect(badMethod.stderr).toContain('--method must be alipay or wechat_pay');
  });

  it('no operator token at all exits 2 without calling the gateway', async () => {
    const run = await cli(['accounts', 'show', 'acme'], {});
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('No operator token: set ADMIN_TOKEN');
  });

  it('a wrong ADMIN_TOKEN exits 1 and says the token is wrong or missing', async () => {
    const run = await cli(['accounts', 'show', 'acme'], { ADMIN_TOKEN: 'not-the-token' });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('401 invalid_admin_token');
    expect(run.stderr).toContain('ADMIN_TOKEN is wrong or missing');
  });

  it('--token overrides ADMIN_TOKEN from the environment', async () => {
    const run = await cli(['accounts', 'show', 'acme', '--token', ADMIN_TOKEN], {
      ADMIN_TOKEN: 'stale',
    });
    expect(run.status, run.stderr).toBe(0);
  });

  it('an unreachable admin URL exits 1 naming the URL', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const run = await cli(['accounts', 'show', 'acme'], { ADMIN_TOKEN }, url);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`Cannot reach the operator API at ${url}`);
  });

  it('no answer in time: exit 1, warning that the command may have landed', async () => {
    const stderr = new Captured();
    const status = await runCli(['refunds', 'approve', 'rf_1'], {
      env: { ADMIN_TOKEN },
      stdout: new Captured(),
      stderr,
      fetch: () => Promise.reject(new DOMException('The operation timed out.', 'TimeoutError')),
    });
    expect(status).toBe(1);
    expect(stderr.text).toContain('http://127.0.0.1:8081 did not answer within 290 s');
    expect(stderr.text).toContain('may still take effect');
  });

  it('a gateway started without ADMIN_TOKEN: exit 1 saying so', async () => {
    const closed = await startTestGateway(
      { REDIS_URL: redis.url, UPSTREAM_OPENAI_URL: `${upstream.url}/openai` },
      { adminToken: undefined },
    );
    try {
      const run = await cli(['accounts', 'show', 'acme'], { ADMIN_TOKEN }, closed.adminUrl);
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('503 admin_disabled');
      expect(run.stderr).toContain('the gateway has no ADMIN_TOKEN set');
    } finally {
      await closed.close();
    }
  });

  it('with --json a refusal also prints the API’s error document on stdout', async () => {
    const run = await cli(['accounts', 'show', 'nobody', '--json']);
    expect(run.status).toBe(1);
    expect(JSON.parse(run.stdout)).toMatchObject({ error: { code: 'account_not_found' } });
  });
});

describe('operator CLI: the package bin', () => {
  it('runs as a child process and exits with the CLI’s status', async () => {
    const env = { ...process.env, ADMIN_TOKEN };
    const bin = ['bin/longcat-gateway.js'];
    const target = ['--admin-url', gateway.adminUrl];
    // Asynchronous on purpose: the gateway answering it runs in this very process.
    const shown = await execFileAsync(
      'node',
      [...bin, 'accounts', 'show', 'acme', ...target, '--json'],
      { cwd: ROOT, env },
    );
    expect(JSON.parse(shown.stdout)).toMatchObject({ id: 'acme' });

    const misused = execFileAsync('node', [...bin, 'accounts', 'show', ...target], {
      cwd: ROOT,
      env,
    });
    await expect(misused).rejects.toMatchObject({ code: 2 });
  });
});
