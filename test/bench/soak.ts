import Big from 'big.js';
import { Pool } from 'undici';
import { sleep } from './children.js';
import type { InspectorSession } from './inspector.js';
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

interface SettledMemory {
  rssMb: number;
  /** Live heap after a forced full GC; undefined without the inspector. */
  heapUsedMb: number | undefined;
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
/** Idle seconds between the warm-up and the memory reading that the end is compared with. */
const WARM_SETTLE_S = 2;
/**
 * Live heap growth per request above which the soak calls it a leak. Anything retained per
 * request (a map entry, a listener, a closure) costs well over 100 bytes; noise is below it.
 */
const LEAK_BYTES_PER_REQUEST = 100;

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
 *
 * The first tenth of the requests warms the gateway up (heap, JIT code, connection pools grow
 * to their working size, which is no leak); memory is read after it and again at the end, each
 * time after a settle period and, when the inspector is reachable, a forced full collection.
 */
export async function runSoak(
  gateway: GatewayService,
  upstream: Service,
  key: string,
  options: SoakOptions,
  inspector: InspectorSession | undefined,
): Promise<boolean> {
  const balanceBefore = await accountBalance(gateway, key);
  const upstreamBefore = await upstreamCounts(upstream);
  const rss = startRssSampler(gateway.pid);
  const tally = newTally();
  const warmCount = Math.ceil(options.requests / 10);

  console.log(
    `soak: ${options.requests} streamed requests, ${options.concurrency} at a time, ` +
      `${Math.round(options.abortShare * 100)}% abandoned after the first chunk; ` +
      `the first ${warmCount} warm up`,
  );
  await driveSoak(gateway, key, options, { from: 0, to: warmCount }, tally, rss.progress);
  const warm = await settledMemory(gateway.pid, inspector, WARM_SETTLE_S);

  const started = performance.now();
  const range = { from: warmCount, to: options.requests };
  await driveSoak(gateway, key, options, range, tally, rss.progress);
  const loadSeconds = (performance.now() - started) / 1000;
  const endOfLoadMb = rssMegabytes(gateway.pid);
  console.log(`load done in ${loadSeconds.toFixed(1)} s; settling ${options.settleS} s`);
  const end = await settledMemory(gateway.pid, inspector, options.settleS);
  const samples = rss.stop();

  printClientTally(tally);
  printMemoryVerdict({ samples, endOfLoadMb, warm, end, measuredRequests: range.to - range.from });

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

function newTally(): ClientTally {
  return {
    ok: 0,
    aborted: 0,
    refusedByStatus: new Map(),
    errors: new Map(),
    truncated: 0,
    leakedUsage: 0,
    requestIds: new Set(),
  };
}

/** Memory once the gateway has been idle `settleS` seconds, after a full GC when possible. */
async function settledMemory(
  pid: number,
  inspector: InspectorSession | undefined,
  settleS: number,
): Promise<SettledMemory> {
  await sleep(settleS * 1000);
  if (inspector === undefined) return { rssMb: rssMegabytes(pid), heapUsedMb: undefined };

  await inspector.collectGarbage();
  const reading = await inspector.memory();
  return { rssMb: rssMegabytes(pid), heapUsedMb: reading.heapUsedMb };
}

/** Runs requests `from` to `to` with at most `concurrency` in flight, each bounded in time. */
async function driveSoak(
  gateway: GatewayService,
  key: string,
  options: SoakOptions,
  range: { from: number; to: number },
  tally: ClientTally,
  progress: { done: number },
): Promise<void> {
  const pool = new Pool(`http://127.0.0.1:${gateway.port}`, { connections: options.concurrency });
  let next = range.from;

  const client = async (): Promise<void> => {
    while (next < range.to) {
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

interface MemoryEvidence {
  samples: RssSample[];
  endOfLoadMb: number;
  warm: SettledMemory;
  end: SettledMemory;
  measuredRequests: number;
}

/**
 * Memory verdict: after the load and the settle period, RSS must be back within a small slack
 * of its level after the warm-up, and the live heap (after a forced GC) must not have grown by
 * more than a few bytes per request. Peak RSS must stay under the 200 MB.
 */
function printMemoryVerdict(evidence: MemoryEvidence): void {
  const { samples, warm, end } = evidence;
  const first = samples[0]?.rssMb ?? Number.NaN;
  const peak = Math.max(...samples.map((sample) => sample.rssMb));
  const mb = (value: number): string => `${value.toFixed(1)} MB`;

  console.log(
    `gateway RSS (${samples.length} samples, every ${SAMPLE_EVERY_MS} ms): start ${mb(first)}, ` +
      `after warm-up ${mb(warm.rssMb)}, peak ${mb(peak)}, end of load ` +
      `${mb(evidence.endOfLoadMb)}, end after settle ${mb(end.rssMb)}`,
  );

  const slack = Math.max(FLAT_SLACK_MB, warm.rssMb * FLAT_SLACK_SHARE);
  const rssFlat = end.rssMb <= warm.rssMb + slack;
  console.log(
    `budget ${rssFlat ? 'PASS' : 'MISS'}  RSS flat across the soak: end ${mb(end.rssMb)} vs ` +
      `after warm-up ${mb(warm.rssMb)} (allowed +${mb(slack)})`,
  );
  console.log(`budget ${peak < 200 ? 'PASS' : 'MISS'}  RSS < 200 MB during the soak: ${mb(peak)}`);

  if (warm.heapUsedMb === undefined || end.heapUsedMb === undefined) {
    console.log('live heap: not measured (inspector unavailable)');
    return;
  }
  const grownMb = end.heapUsedMb - warm.heapUsedMb;
  const bytesPerRequest = (grownMb * 1024 * 1024) / evidence.measuredRequests;
  const heapFlat = bytesPerRequest <= LEAK_BYTES_PER_REQUEST;
  console.log(
    `${heapFlat ? 'ok  ' : 'LEAK'}  live heap after forced GC: ${mb(warm.heapUsedMb)} after ` +
      `warm-up, ${mb(end.heapUsedMb)} at the end (${bytesPerRequest.toFixed(0)} bytes per ` +
      `request over ${evidence.measuredRequests}; limit ${LEAK_BYTES_PER_REQUEST})`,
  );
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
