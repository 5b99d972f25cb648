import { sleep } from './children.js';
import { type LoadDriver, type LoadSpec, runLoad } from './load.js';
import { cpuMicros, ForeignCpu, PeakRss } from './proc.js';
import { type CommandStats, commandsBetween, readCommandStats } from './redis-stats.js';
import {
  printBudget,
  printRatios,
  printRedisWork,
  printTable,
  printTtfb,
  type RoundMeasure,
  type Scenario,
  type Summary,
  scenarioKey,
  summarize,
  summarizeTtfb,
  type TargetName,
  type TtfbSummary,
} from './report.js';
import { measureTtfb } from './ttfb.js';

/** A process under load: where to send requests, and which pids to charge for them. */
export interface Target {
  name: TargetName;
  url: string;
  headers: Record<string, string>;
  pid: number;
  /** redis-server, whose CPU and commands the gateway's requests also cost. */
  redis?: { pid: number; port: number };
}

export interface BenchOptions {
  driver: LoadDriver;
  durationS: number;
  rounds: number;
  ttfbRequests: number;
  scratchDir: string;
  /** Every process of the stack, so that CPU used by anything else can be told apart. */
  stackPids: number[];
  scenarios: Scenario[];
}

const PLAIN_BODY = JSON.stringify({
  model: 'LongCat-2.0',
  messages: [{ role: 'user', content: 'hello' }],
  max_tokens: 64,
});
const STREAM_BODY = JSON.stringify({ ...JSON.parse(PLAIN_BODY), stream: true });

export const ALL_SCENARIOS: Scenario[] = [
  { mode: 'plain', connections: 1 },
  { mode: 'plain', connections: 50 },
  { mode: 'stream', connections: 1 },
  { mode: 'stream', connections: 50 },
];

const WARM_UP_S = 1;
/** Lets sockets of the last load close before the next one starts. */
const PAUSE_MS = 200;

export function bodyFor(scenario: Scenario): string {
  return scenario.mode === 'stream' ? STREAM_BODY : PLAIN_BODY;
}

/**
 * Runs the whole comparison. Targets are interleaved inside every round (upstream, floor,
 * gateway, then again), so a drift of the shared machine over time hits all of them alike
 * instead of whichever ran last.
 */
export async function runBench(targets: Target[], options: BenchOptions): Promise<void> {
  await warmUp(targets, options);

  const rounds = new Map<string, RoundMeasure[]>();
  for (let round = 1; round <= options.rounds; round += 1) {
    for (const scenario of options.scenarios) {
      for (const target of targets) {
        const measure = await measureRound(target, scenario, options, options.durationS);
        logRound(round, target, scenario, measure);
        const key = `${target.name} ${scenarioKey(scenario)}`;
        rounds.set(key, [...(rounds.get(key) ?? []), measure]);
      }
    }
  }

  const ttfb = await measureAllTtfb(targets, options);
  const summaries = summarizeAll(targets, options.scenarios, rounds);

  console.log('');
  printTable(summaries);
  console.log('');
  printTtfb(ttfb);
  console.log('');
  printRatios(summaries, ttfb);
  console.log('');
  printRedisWork(summaries);
  console.log('');
  printBudget(summaries, ttfb);
}

/** Brings each target's JIT, pools and connections to a steady state before anything counts. */
async function warmUp(targets: Target[], options: BenchOptions): Promise<void> {
  console.log(`warming up (${WARM_UP_S} s per target and mode)`);
  for (const target of targets) {
    for (const mode of new Set(options.scenarios.map((scenario) => scenario.mode))) {
      const scenario = { mode, connections: 50 };
      const spec = loadSpec(target, scenario, WARM_UP_S);
      await runLoad(options.driver, spec, options.scratchDir);
    }
  }
  await sleep(PAUSE_MS);
}

function loadSpec(target: Target, scenario: Scenario, durationS: number): LoadSpec {
  return {
    url: target.url,
    headers: target.headers,
    body: bodyFor(scenario),
    connections: scenario.connections,
    durationS,
  };
}

async function measureRound(
  target: Target,
  scenario: Scenario,
  options: BenchOptions,
  durationS: number,
): Promise<RoundMeasure> {
  const spec = loadSpec(target, scenario, durationS);
  const cpuBefore = cpuMicros(target.pid);
  const redisBefore = target.redis && (await redisReading(target.redis));
  const peak = new PeakRss(target.pid);
  const foreign = new ForeignCpu(options.stackPids);

  const load = await runLoad(options.driver, spec, options.scratchDir);

  const foreignCores = foreign.stop();
  const peakRssMb = peak.stop();
  const cpu = cpuMicros(target.pid) - cpuBefore;
  const redisAfter = target.redis && (await redisReading(target.redis));
  await sleep(PAUSE_MS);

  const redisMeasured = redisBefore !== undefined && redisAfter !== undefined;
  return {
    ...load,
    cpuMicros: cpu,
    redisCpuMicros: redisMeasured ? redisAfter.cpu - redisBefore.cpu : undefined,
    redisCommands: redisMeasured ? commandsBetween(redisBefore.stats, redisAfter.stats) : undefined,
    peakRssMb,
    foreignCores,
  };
}

interface RedisReading {
  cpu: number;
  stats: CommandStats;
}

async function redisReading(redis: { pid: number; port: number }): Promise<RedisReading> {
  return { cpu: cpuMicros(redis.pid), stats: await readCommandStats(redis.port) };
}

function logRound(round: number, target: Target, scenario: Scenario, measure: RoundMeasure): void {
  const rps = (measure.ok / measure.durationS).toFixed(0);
  const latency = `p50 ${measure.p50Ms.toFixed(3)} ms  p99 ${measure.p99Ms.toFixed(3)} ms`;
  const figures = `${rps} rps  ${latency}`;
  const name = `${target.name} ${scenarioKey(scenario)}`.padEnd(20);
  const failed = measure.failed > 0 ? `  FAILED ${measure.failed}` : '';
  const others = `  others ${measure.foreignCores.toFixed(2)} cores`;
  console.log(`round ${round}  ${name} ${figures}${others}${failed}`);
}

/** TTFB of streamed requests, interleaved across targets round by round like the loads. */
async function measureAllTtfb(targets: Target[], options: BenchOptions): Promise<TtfbSummary[]> {
  const samples = new Map<TargetName, number[]>();
  const perRound = Math.max(1, Math.ceil(options.ttfbRequests / options.rounds));

  for (let round = 1; round <= options.rounds; round += 1) {
    for (const target of targets) {
      const ttfbTarget = { url: target.url, headers: target.headers, body: STREAM_BODY };
      const measured = await measureTtfb(ttfbTarget, perRound);
      samples.set(target.name, [...(samples.get(target.name) ?? []), ...measured]);
    }
  }

  return targets.map((target) => summarizeTtfb(target.name, samples.get(target.name) ?? []));
}

function summarizeAll(
  targets: Target[],
  scenarios: Scenario[],
  rounds: Map<string, RoundMeasure[]>,
): Summary[] {
  const summaries: Summary[] = [];
  for (const scenario of scenarios) {
    for (const target of targets) {
      const measured = rounds.get(`${target.name} ${scenarioKey(scenario)}`);
      if (measured !== undefined) summaries.push(summarize(target.name, scenario, measured));
    }
  }
  return summaries;
}
