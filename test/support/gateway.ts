import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { AccountView } from '../../src/accounts/state.js';
import type { UsagePage, UsageRecord } from '../../src/accounts/usage.js';
import { configFromEnv, type GatewayConfig } from '../../src/config.js';
import { type Gateway, startGateway } from '../../src/gateway.js';
import type { Charge } from '../../src/settlement/settle.js';

export const ADMIN_TOKEN = 'test-admin-token';

/** Log lines a test gateway wrote, parsed, so that tests can assert on them. */
export class LogCapture extends Writable {
  readonly lines: Record<string, unknown>[] = [];

  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim()) this.lines.push(JSON.parse(line) as Record<string, unknown>);
    }
    done();
  }
}

export interface TestGateway extends Gateway {
  logs: LogCapture;
  admin<T = unknown>(method: string, path: string, body?: unknown): Promise<AdminReply<T>>;
  /** Creates an account with a key, topped up with `usd` (if given). */
  account(id: string, usd?: string): Promise<string>;
  call(path: string, init?: RequestInit & { key?: string }): Promise<Response>;
}

export interface AdminReply<T> {
  status: number;
  body: T;
}

/** Starts a gateway in this process on loopback, with its own settlement journal. */
export async function startTestGateway(
  env: Record<string, string>,
  overrides: Partial<GatewayConfig> = {},
): Promise<TestGateway> {
  const config = {
    ...configFromEnv({
      HOST: '127.0.0.1',
      PORT: '0',
      ADMIN_PORT: '0',
      ADMIN_TOKEN,
      UPSTREAM_API_KEY: 'sk-operator-upstream',
      SETTLEMENT_JOURNAL_DIR: mkdtempSync(join(tmpdir(), 'lcgw-journal-')),
      LOG_LEVEL: 'info',
      ...env,
    }),
    ...overrides,
  };
  const logs = new LogCapture();
  const gateway = await startGateway(config, { logDestination: logs });

  const admin = async <T>(method: string, path: string, body?: unknown) => {
    const res = await fetch(gateway.adminUrl + path, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };

  const account = async (id: string, usd?: string) => {
    await admin('POST', '/admin/accounts', { id });
    const { body } = await admin<{ key: string }>('POST', `/admin/accounts/${id}/keys`);
    if (usd) {
      await admin('POST', `/admin/accounts/${id}/topups`, {
        order_id: `initial-${id}`,
        amount: usd,
        method: 'alipay',
      });
    }
    return body.key;
  };

  const call = (path: string, init: RequestInit & { key?: string } = {}) => {
    const headers = new Headers(init.headers);
    if (init.key) headers.set('authorization', `Bearer ${init.key}`);
    if (init.body) headers.set('content-type', 'application/json');
    return fetch(gateway.publicUrl + path, { ...init, headers });
  };

  return Object.assign(gateway, { logs, admin, account, call });
}

/** The account view through the operator API. */
export async function accountOf(gateway: TestGateway, id: string): Promise<AccountView> {
  const { body } = await gateway.admin<AccountView>('GET', `/admin/accounts/${id}`);
  return body;
}

export type { UsageRecord };

/** Every usage record of an account, newest first, following cursors. */
export async function usageOf(gateway: TestGateway, id: string): Promise<UsageRecord[]> {
  const records: UsageRecord[] = [];
  let cursor: string | null = '';
  while (cursor !== null) {
    const query: string = cursor ? `?limit=1000&cursor=${cursor}` : '?limit=1000';
    const reply: AdminReply<UsagePage> = await gateway.admin<UsagePage>(
      'GET',
      `/admin/accounts/${id}/usage${query}`,
    );
    records.push(...reply.body.data);
    cursor = reply.body.next_cursor;
  }
  return records;
}

/** Resolves when the gateway has settled the request with this id (now or after a retry). */
export function settledOnce(gateway: Gateway, requestId?: string): Promise<Charge> {
  return new Promise((resolve) => {
    const onSettled = (charge: Charge) => {
      if (requestId !== undefined && charge.requestId !== requestId) return;
      gateway.deps.settler.off('settled', onSettled);
      resolve(charge);
    };
    gateway.deps.settler.on('settled', onSettled);
  });
}
