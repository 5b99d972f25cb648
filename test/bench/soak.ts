import Big from 'big.js';
import { Pool } from 'undici';
import { sleep } from './children.js';
import { rssMegabytes } from './proc.js';
import type { GatewayService, Service } from './stack.js';
import type { UpstreamCounts } from './upstream.js';

export interface SoakOptions {
  requests: number;
  concurrency: number;
  /** Share of requests whose client hangs up after the first chunk. */
  abortShare: number;
  /** Quiet time after the load, before the end RSS and the ledger are read. */
  settleS: number;
}

/** What the clients saw, tallied while the soak runs. */
interface ClientTally {
  ok: number;
  aborted: number;
  refusedByStatus: Map<number, number>;
  errors: Map<string, number>;
  /** Full streams that did not end with `data: [DONE]`. */
  truncated: number;
  /** Usage chunks (`choices: []`) delivered to a client that never asked for them. */
  leakedUsage: number;
  requestIds: Set<string>;
}

interface RssSample {
  atMs: number;
  done: number;
  rssMb: number;
}

interface UsageRecord {
  request_id: string;
  cost: string;
  estimated?: boolean;
}

const SAMPLE_EVERY_MS = 250;
const REQUEST_TIMEOUT_MS = 30_000;
const USAGE_PAGE = 100;
/** RSS may end this much above the warm level and still count as flat (allocator slack). */
const FLAT_SLACK_MB = 16;
const FLAT_SLACK_SHARE = 0.15;

const STREAM_BODY = JSON.stringify({
  model: 'LongCat-2.0',
  messages: [{ role: 'user', content: 'hello' }],
  max_tokens: 64,
  stream: true,
});

/**
 * Streams `requests` chat completions through the gateway, a share of them abandoned after the
 * first chunk, while sampling the gateway's RSS; then checks that memory came back and that the
 * ledger reconciles with what the upstream served. Returns false when the ledger does not.
 */
export async function runSoak(
  gateway: GatewayService,
  upstream: Service,
  key: string,
  options: SoakOptions,
): Promise<boolean> {
  const balanceBefore = await accountBalance(gateway, key);
  const upstreamBefore = await upstreamCounts(upstream);
  const rss = startRssSampler(gateway.pid);

  console.log(
    `soak: ${options.requests} streamed requests, ${options.concurrency} at a time, ` +
      `${Math.round(options.abortShare * 100)}% abandoned after the first chunk`,
  );
  const started = performance.now();
  const tally = await driveSoak(gateway, key, options, rss.progress);
  const loadSeconds = (performance.now() - started) / 1000;
  const endOfLoadMb = rssMegabytes(gateway.pid);

  console.log(`load done in ${loadSeconds.toFixed(1)} s; settling ${options.settleS} s`);
  await sleep(options.settleS * 1000);
  const samples = rss.stop();

  printClientTally(tally);
  printRssVerdict(samples, endOfLoadMb, options.requests);

  const upstreamAfter = await upstreamCounts(upstream);
  const balanceAfter = await accountBalance(gateway, key);
  const records = await allUsageRecords(gateway, key);
  return reconcileLedger({
    upstreamBefore,
    upstreamAfter,
    balanceBefore,
    balanceAfter,
    records,
    tally,
  });
}

/** Runs the requests with at most `concurrency` in flight, each bounded in time. */
async function driveSoak(
  gateway: GatewayService,
  key: string,
  options: SoakOptions,
  progress: { done: number },
): Promise<ClientTally> {
  const tally: ClientTally = {
    ok: 0,
    aborted: 0,
    refusedByStatus: new Map(),
    errors: new Map(),
    truncated: 0,
    leakedUsage: 0,
    requestIds: new Set(),
  };
  const pool = new Pool(`http://127.0.0.1:${gateway.port}`, { connections: options.concurrency });
  let next = 0;

  const client = async (): Promise<void> => {
    while (next < options.requests) {
      const index = next;
      next += 1;
      await streamOne(pool, key, abandons(index, options.abortShare), tally);
      progress.done += 1;
    }
  };

  try {
    await Promise.all(Array.from({ length: options.concurrency }, client));
  } finally {
    await pool.close();
  }
  return tally;
}

/** Spreads the abandoned requests evenly: exactly `share` of any long enough run of indexes. */
function abandons(index: number, share: number): boolean {
  return Math.floor((index + 1) * share) > Math.floor(index * share);
}

async function streamOne(pool: Pool, key: string, abandon: boolean, tally: ClientTally) {
  const hangUp = new AbortController();
  try {
    const response = await pool.request({
      method: 'POST',
      path: '/v1/chat/completions',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: STREAM_BODY,
      signal: hangUp.signal,
      headersTimeout: REQUEST_TIMEOUT_MS,
      bodyTimeout: REQUEST_TIMEOUT_MS,
    });

    const requestId = response.headers['x-request-id'];
    if (typeof requestId === 'string') tally.requestIds.add(requestId);

    if (response.statusCode !== 200) {
      await response.body.dump();
      increment(tally.refusedByStatus, response.statusCode);
      return;
    }

    if (abandon) {
      await readFirstChunk(response.body);
      hangUp.abort();
      tally.aborted += 1;
      return;
    }

    checkStream(await response.body.text(), tally);
    tally.ok += 1;
  } catch (error) {
    if (!hangUp.signal.aborted) increment(tally.errors, describe(error));
  }
}

async function readFirstChunk(body: AsyncIterable<unknown>): Promise<void> {
  for await (const _chunk of body) return;
}

/** A full stream must end with [DONE] and must not carry a usage chunk nobody asked for. */
function checkStream(text: string, tally: ClientTally): void {
  if (!text.trimEnd().endsWith('data: [DONE]')) tally.truncated += 1;

  for (const line of text.split('\n')) {
    if (!line.startsWith('data: {')) continue;
    const event = JSON.parse(line.slice('data: '.length)) as { choices?: unknown[] };
    if (Array.isArray(event.choices) && event.choices.length === 0) tally.leakedUsage += 1;
  }
}

function increment<K>(counts: Map<K, number>, key: K): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

function describe(error: unknown): string {
  if (error instanceof Error) return (error as { code?: string }).code ?? error.message;
  return String(error);
}

/** Samples the gateway's RSS on a timer, tagging each sample with how many requests were done. */
function startRssSampler(pid: number) {
  const samples: RssSample[] = [];
  const progress = { done: 0 };
  const started = performance.now();
  const sample = (): void => {
    const atMs = performance.now() - started;
    samples.push({ atMs, done: progress.done, rssMb: rssMegabytes(pid) });
  };
  sample();
  const timer = setInterval(sample, SAMPLE_EVERY_MS);

  return {
    progress,
    stop(): RssSample[] {
      clearInterval(timer);
      sample();
      return samples;
    },
  };
}

function printClientTally(tally: ClientTally): void {
  console.log(`clients: ${tally.ok} streams read to the end, ${tally.aborted} abandoned`);
  for (const [status, count] of tally.refusedByStatus) console.log(`  status ${status}: ${count}`);
  for (const [error, count] of tally.errors) console.log(`  client error ${error}: ${count}`);

  const truncated = tally.truncated === 0 ? 'ok' : `WARN ${tally.truncated} streams`;
  console.log(`stream ends with [DONE]: ${truncated}`);
  const leaked = tally.leakedUsage === 0 ? 'ok' : `WARN ${tally.leakedUsage} chunks`;
  console.log(`no usage chunk sent to clients that did not ask for one: ${leaked}`);
}

/**
 * Memory verdict. "Warm" is the RSS once a tenth of the requests are done: the first requests
 * grow the heap, JIT code and connection pools to their working size, which is not a leak.
 * Flat means the RSS after the settle period is back within a small slack of that level.
 */
function printRssVerdict(samples: RssSample[], endOfLoadMb: number, requests: number): void {
  const first = samples[0]?.rssMb ?? Number.NaN;
  const warm = samples.find((sample) => sample.done >= requests / 10)?.rssMb ?? first;
  const half = samples.find((sample) => sample.done >= requests / 2)?.rssMb ?? warm;
  const peak = Math.max(...samples.map((sample) => sample.rssMb));
  const end = samples[samples.length - 1]?.rssMb ?? Number.NaN;

  const mb = (value: number): string => `${value.toFixed(1)} MB`;
  console.log(
    `gateway RSS (${samples.length} samples, every ${SAMPLE_EVERY_MS} ms): start ${mb(first)}, ` +
      `warm ${mb(warm)}, half-way ${mb(half)}, peak ${mb(peak)}, ` +
      `end of load ${mb(endOfLoadMb)}, end after settle ${mb(end)}`,
  );
  console.log(`growth over the second half of the load: ${(endOfLoadMb - half).toFixed(1)} MB`);

  const slack = Math.max(FLAT_SLACK_MB, warm * FLAT_SLACK_SHARE);
  const flat = end <= warm + slack;
  console.log(
    `budget ${flat ? 'PASS' : 'MISS'}  RSS flat across the soak: end ${mb(end)} vs warm ` +
      `${mb(warm)} (allowed +${mb(slack)})`,
  );
  console.log(`budget ${peak < 200 ? 'PASS' : 'MISS'}  RSS < 200 MB during the soak: ${mb(peak)}`);
}

async function accountBalance(gateway: GatewayService, key: string): Promise<Big> {
  const account = (await getJson(gateway, '/v1/account', key)) as { balance?: unknown };
  if (typeof account.balance !== 'string') throw new Error('account view has no string balance');
  return new Big(account.balance);
}

async function upstreamCounts(upstream: Service): Promise<UpstreamCounts> {
  const response = await fetch(`http://127.0.0.1:${upstream.port}/__bench/counts`);
  return (await response.json()) as UpstreamCounts;
}

/** Pages through the key-holder usage route, newest first, until next_cursor is null. */
async function allUsageRecords(gateway: GatewayService, key: string): Promise<UsageRecord[]> {
  const records: UsageRecord[] = [];
  const seenCursors = new Set<string>();
  let cursor: string | null = null;

  // Bounded: a gateway that repeated a cursor would otherwise keep the soak paging for ever.
  for (let page = 0; page < 10_000; page += 1) {
    const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
    const body = (await getJson(gateway, `/v1/account/usage?limit=${USAGE_PAGE}${query}`, key)) as {
      data: UsageRecord[];
      next_cursor: string | null;
    };
    records.push(...body.data);

    if (body.next_cursor === null || body.next_cursor === undefined) return records;
    if (seenCursors.has(body.next_cursor)) throw new Error('usage paging repeated a cursor');
    seenCursors.add(body.next_cursor);
    cursor = body.next_cursor;
  }
  throw new Error('usage paging did not end after 10,000 pages');
}

async function getJson(gateway: GatewayService, path: string, key: string): Promise<unknown> {
  const response = await fetch(`http://127.0.0.1:${gateway.port}${path}`, {
    headers: { authorization: `Bearer ${key}` },
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`GET ${path}: ${response.status}: ${text}`);
  return JSON.parse(text);
}

interface LedgerEvidence {
  upstreamBefore: UpstreamCounts;
  upstreamAfter: UpstreamCounts;
  balanceBefore: Big;
  balanceAfter: Big;
  records: UsageRecord[];
  tally: ClientTally;
}

/**
 * Every request the upstream answered with 200 must be billed exactly once: as many usage
 * records as served requests, no request id twice, and the records' costs adding up exactly to
 * what left the balance.
 */
function reconcileLedger(evidence: LedgerEvidence): boolean {
  const { upstreamBefore, upstreamAfter, records } = evidence;
  const served = upstreamAfter.served - upstreamBefore.served;
  const finished = upstreamAfter.completed - upstreamBefore.completed;
  const cutOff = upstreamAfter.callerGone - upstreamBefore.callerGone;
  const unique = new Set(records.map((record) => record.request_id)).size;
  const billed = records.reduce((total, record) => total.plus(record.cost), new Big(0));
  const spent = evidence.balanceBefore.minus(evidence.balanceAfter);
  const estimated = records.filter((record) => record.estimated === true).length;
  const echoed = records.filter((record) => evidence.tally.requestIds.has(record.request_id));

  console.log(
    `upstream: ${served} served with 200 (${finished} read to the end by the gateway, ` +
      `${cutOff} hung up on before the end)`,
  );
  console.log(
    `ledger: ${records.length} usage records, ${unique} distinct request ids, ${estimated} ` +
      `estimated, ${echoed.length} with an id a client saw in x-request-id`,
  );
  console.log(`  costs sum to ${billed.toFixed()} USD; balance fell by ${spent.toFixed()} USD`);

  const checks: [string, boolean][] = [
    [`records (${records.length}) = upstream 200s (${served})`, records.length === served],
    [`request ids unique (${unique} of ${records.length})`, unique === records.length],
    [`sum of costs (${billed.toFixed()}) = balance change (${spent.toFixed()})`, billed.eq(spent)],
  ];
  for (const [what, ok] of checks) console.log(`  ${ok ? 'ok  ' : 'FAIL'}  ${what}`);

  const pass = checks.every(([, ok]) => ok);
  console.log(pass ? 'PASS ledger reconciles' : 'FAIL ledger does not reconcile');
  return pass;
}
