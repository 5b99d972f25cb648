import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountKeys } from '../src/store/keys.js';
import { ADMIN_TOKEN, startTestGateway } from './support/gateway.js';
import { freePort } from './support/redis.js';
import { Gate, pausedChatStream, useStack } from './support/stack.js';

const ROOT = join(import.meta.dirname, '..');

const stack = useStack();
let key: string;

beforeAll(async () => {
  key = await stack.gateway.account('ops', '10');
});

function chat(baseUrl: string, stream = false) {
  return fetch(`${baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'LongCat-2.0',
      messages: [{ role: 'user', content: 'hi' }],
      stream,
    }),
  });
}

describe('metrics', () => {
  it('pass promtool check metrics and count what a request did', async () => {
    await (await chat(stack.gateway.publicUrl)).text();
    const text = await (await fetch(`${stack.gateway.adminUrl}/metrics`)).text();

    const promtool = spawn('promtool', ['check', 'metrics']);
    let complaints = '';
    promtool.stdout.on('data', (chunk: Buffer) => {
      complaints += chunk.toString();
    });
    promtool.stderr.on('data', (chunk: Buffer) => {
      complaints += chunk.toString();
    });
    promtool.stdin.end(text);
    const [code] = await once(promtool, 'exit');
    expect(complaints).toBe('');
    expect(code).toBe(0);

    expect(text).toMatch(/longcat_gateway_tokens_total\{model="LongCat-2.0",kind="output"\} [1-9]/);
    expect(text).toMatch(
      /longcat_gateway_requests_total\{route="chat_completions",model="LongCat-2.0",status="200",outcome="served"\} [1-9]/,
    );
    expect(text).toMatch(
      /longcat_gateway_redis_script_duration_seconds_count\{script="admit",result="ok"\} [1-9]/,
    );
    expect(text).toContain('process_resident_memory_bytes');
    expect(text).not.toContain('account="ops"');
  });

  it('carry a per-account series only for accounts listed in METRICS_ACCOUNTS', async () => {
    const listed = await startTestGateway({
      REDIS_URL: stack.redis.url,
      UPSTREAM_OPENAI_URL: `${stack.upstream.url}/openai`,
      METRICS_ACCOUNTS: 'ops',
    });
    try {
      await (await chat(listed.publicUrl)).text();
      const text = await (await fetch(`${listed.adminUrl}/metrics`)).text();
      expect(text).toMatch(/longcat_gateway_account_billed_usd_total\{account="ops"\} [0-9.]+/);
    } finally {
      await listed.close();
    }
  });

  it('are scraped by a real Prometheus, and PromQL returns the token counter', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lcgw-prom-'));
    const port = await freePort();
    const target = new URL(stack.gateway.adminUrl).host;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: gateway\n    static_configs:\n      - targets: ['${target}']\n`,
    );
    const prometheus = spawn(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: 'ignore' },
    );
    try {
      await (await chat(stack.gateway.publicUrl)).text();
      const value = await queryUntilPresent(
        `http://127.0.0.1:${port}`,
        'sum(longcat_gateway_tokens_total{kind="output",model="LongCat-2.0"})',
      );
      expect(value).toBeGreaterThanOrEqual(500);
    } finally {
      prometheus.kill('SIGKILL');
    }
  });
});

/**
 * Asks Prometheus until the series has been scraped. Scrapes happen on Prometheus' own clock,
 * so there is no event to wait for; the loop is bounded to 20 seconds.
 */
async function queryUntilPresent(base: string, query: string): Promise<number> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(query)}`).catch(
      () => undefined,
    );
    const body = (await res?.json().catch(() => undefined)) as
      | { data?: { result?: { value: [number, string] }[] } }
      | undefined;
    const sample = body?.data?.result?.[0]?.value[1];
    if (sample !== undefined) return Number(sample);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`Prometheus returned nothing for ${query} within 20 s`);
}

describe('logs', () => {
  it('write one access line per request, without keys or prompt text', async () => {
    const secret = 'the prompt text that must never be logged';
    const res = await stack.gateway.call('/v1/chat/completions', {
      method: 'POST',
      key,
      body: JSON.stringify({ model: 'LongCat-2.0', messages: [{ role: 'user', content: secret }] }),
    });
    const requestId = res.headers.get('x-request-id');
    await res.text();

    const lines = stack.gateway.logs.lines.filter((line) => line.requestId === requestId);
    expect(lines).toEqual([
      expect.objectContaining({
        msg: 'request',
        level: 30,
        status: 200,
        model: 'LongCat-2.0',
        account: 'ops',
        tokens: { uncached_input: 1000, cached_input: 0, output: 500 },
        cost: '0.0009',
        durationMs: expect.any(Number),
      }),
    ]);
    const everything = JSON.stringify(stack.gateway.logs.lines);
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain(key);
    expect(everything).not.toContain(key.split('.')[2]);
    expect(everything).not.toContain('sk-operator-upstream');
  });
});

describe('graceful shutdown', () => {
  let child: ChildProcess | undefined;

  afterAll(() => {
    if (child?.exitCode === null) child.kill('SIGKILL');
  });

  it('finishes and bills a stream in flight on SIGTERM, refusing new connections', async () => {
    const [port, adminPort] = [await freePort(), await freePort()];
    child = spawn(process.execPath, [join(ROOT, 'dist', 'src', 'main.js')], {
      env: {
        ...process.env,
        HOST: '127.0.0.1',
        PORT: String(port),
        ADMIN_PORT: String(adminPort),
        ADMIN_TOKEN,
        REDIS_URL: stack.redis.url,
        UPSTREAM_OPENAI_URL: `${stack.upstream.url}/openai`,
        SETTLEMENT_JOURNAL_DIR: mkdtempSync(join(tmpdir(), 'lcgw-journal-')),
      },
    });
    const logs = lines(child);
    await logs.until('gateway started');

    const gate = new Gate();
    void pausedChatStream(stack.upstream, gate);
    const usage = accountKeys('ops').usage;
    const probe = new Redis(stack.redis.url);
    const recordsBefore = await probe.xlen(usage);

    const base = `http://127.0.0.1:${port}`;
    const res = await chat(base, true);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();

    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await logs.until('shutting down');
    await expect(chat(base)).rejects.toThrow();

    gate.open();
    let text = '';
    for (let part = await reader.read(); !part.done; part = await reader.read()) {
      text += new TextDecoder().decode(part.value);
    }
    expect(text).toContain('data: [DONE]');
    const [code] = await exited;
    expect(code).toBe(0);
    expect(await probe.xlen(usage)).toBe(recordsBefore + 1);
    probe.disconnect();
    stack.upstream.respondWith(undefined);
  });
});

/** Lets a test wait for a child's log line whose message contains `text`. */
function lines(child: ChildProcess) {
  let output = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    for (const waiter of waiters.filter((w) => output.includes(w.text))) waiter.resolve();
  });
  return {
    until: (text: string) =>
      new Promise<void>((resolve) => {
        if (output.includes(text)) resolve();
        else waiters.push({ text, resolve });
      }),
  };
}
