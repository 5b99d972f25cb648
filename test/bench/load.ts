import { execFile, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';

/** One fixed-duration load against one URL, with a fixed number of keep-alive connections. */
export interface LoadSpec {
  url: string;
  headers: Record<string, string>;
  body: string;
  connections: number;
  durationS: number;
}

/** What one load measured, the same whichever driver produced it. */
export interface LoadResult {
  /** Responses with a 2xx status. */
  ok: number;
  /** Non-2xx responses, socket errors and timeouts. */
  failed: number;
  durationS: number;
  p50Ms: number;
  p99Ms: number;
}

export type LoadDriver = 'autocannon' | 'wrk';

/** wrk when it is installed (it costs the shared CPUs far less per request), else autocannon. */
export function defaultDriver(): LoadDriver {
  try {
    execFileSync('which', ['wrk'], { stdio: 'ignore' });
    return 'wrk';
  } catch {
    return 'autocannon';
  }
}

export function runLoad(
  driver: LoadDriver,
  spec: LoadSpec,
  scratchDir: string,
): Promise<LoadResult> {
  return driver === 'wrk' ? runWrk(spec, scratchDir) : runAutocannon(spec);
}

/**
 * autocannon keeps its latency histogram in whole milliseconds, too coarse for a 0.5 ms budget,
 * so the exact per-response times are collected from its 'response' events and ranked here.
 */
function runAutocannon(spec: LoadSpec): Promise<LoadResult> {
  const latencies: number[] = [];

  return new Promise((done, fail) => {
    const instance = autocannon(
      {
        url: spec.url,
        method: 'POST',
        headers: { 'content-type': 'application/json', ...spec.headers },
        body: spec.body,
        connections: spec.connections,
        pipelining: 1,
        duration: spec.durationS,
        timeout: 10,
      },
      (error, result) => {
        if (error) {
          fail(error);
          return;
        }
        const failed = result.non2xx + result.errors + result.timeouts;
        done({
          ok: result['2xx'],
          failed,
          durationS: result.duration,
          p50Ms: percentile(latencies, 0.5),
          p99Ms: percentile(latencies, 0.99),
        });
      },
    );

    // autocannon emits (client, statusCode, bytes, ms) although its typings omit the client.
    instance.on('response', (...args: unknown[]) => {
      const status = args[1];
      const ms = args[3];
      if (typeof status === 'number' && status < 300 && typeof ms === 'number') latencies.push(ms);
    });
  });
}

/** The wrk script: a POST with our body, and a JSON summary line with µs percentiles. */
function wrkScript(spec: LoadSpec): string {
  const headers = Object.entries({ 'Content-Type': 'application/json', ...spec.headers })
    .map(([name, value]) => `wrk.headers[${JSON.stringify(name)}] = ${JSON.stringify(value)}`)
    .join('\n');

  return `wrk.method = "POST"
wrk.body = ${JSON.stringify(spec.body)}
${headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%f,"p99_us":%f,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
`;
}

interface WrkSummary {
  requests: number;
  duration_us: number;
  p50_us: number;
  p99_us: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
}

function runWrk(spec: LoadSpec, scratchDir: string): Promise<LoadResult> {
  const script = join(scratchDir, 'wrk-load.lua');
  writeFileSync(script, wrkScript(spec));
  const threads = String(Math.min(2, spec.connections));
  const args = ['-t', threads, '-c', String(spec.connections), '-d', `${spec.durationS}s`];
  args.push('--timeout', '10s', '-s', script, spec.url);

  return new Promise((done, fail) => {
    execFile('wrk', args, { timeout: (spec.durationS + 30) * 1000 }, (error, stdout) => {
      if (error) {
        fail(error);
        return;
      }
      const line = stdout.split('\n').find((text) => text.startsWith('BENCH_JSON '));
      if (line === undefined) {
        fail(new Error(`wrk printed no summary:\n${stdout}`));
        return;
      }
      done(fromWrkSummary(JSON.parse(line.slice('BENCH_JSON '.length)) as WrkSummary));
    });
  });
}

/** wrk counts a non-2xx/3xx answer both as a request and as a status error. */
function fromWrkSummary(summary: WrkSummary): LoadResult {
  const socketErrors = summary.connect + summary.read + summary.write + summary.timeout;
  return {
    ok: summary.requests - summary.status,
    failed: summary.status + socketErrors,
    durationS: summary.duration_us / 1e6,
    p50Ms: summary.p50_us / 1000,
    p99Ms: summary.p99_us / 1000,
  };
}

/** The nearest-rank percentile of `values` (sorted in place); NaN when there are none. */
export function percentile(values: number[], fraction: number): number {
  if (values.length === 0) return Number.NaN;
  values.sort((a, b) => a - b);
  const rank = Math.min(values.length - 1, Math.ceil(fraction * values.length) - 1);
  return values[Math.max(0, rank)] ?? Number.NaN;
}
