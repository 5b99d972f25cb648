import { percentile } from './load.js';
import { addCommands, type CommandStats, type CommandTally } from './redis-stats.js';

export type TargetName = 'upstream' | 'floor' | 'gateway';
export type Mode = 'plain' | 'stream';

export interface Scenario {
  mode: Mode;
  connections: number;
}

/** One load of one target in one round, with the CPU and memory its process used. */
export interface RoundMeasure {
  ok: number;
  failed: number;
  durationS: number;
  p50Ms: number;
  p99Ms: number;
  cpuMicros: number;
  /** CPU of redis-server in the same stretch; only the gateway uses it. */
  redisCpuMicros: number | undefined;
  /** Redis commands the round caused; only the gateway uses Redis. */
  redisCommands: CommandStats | undefined;
  peakRssMb: number;
  /** CPU taken meanwhile by processes outside the bench, in cores. */
  foreignCores: number;
}

/** All rounds of one target and scenario, folded into the table's figures. */
export interface Summary {
  target: TargetName;
  scenario: Scenario;
  rounds: number;
  ok: number;
  failed: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  cpuMicrosPerRequest: number;
  redisMicrosPerRequest: number | undefined;
  /** Redis commands per answered request, by command. */
  redisCommandsPerRequest: CommandStats | undefined;
  peakRssMb: number;
  foreignCores: number;
}

export function scenarioKey(scenario: Scenario): string {
  return `${scenario.mode}/${scenario.connections}`;
}

/**
 * Folds rounds into one line. Throughput is total responses over total time; latency is the mean
 * of the rounds' percentiles (wrk reports percentiles, not samples, so they cannot be pooled).
 */
export function summarize(target: TargetName, scenario: Scenario, rounds: RoundMeasure[]): Summary {
  const sum = (pick: (round: RoundMeasure) => number): number =>
    rounds.reduce((total, round) => total + pick(round), 0);
  const answered = sum((round) => round.ok + round.failed);
  const redis = rounds.every((round) => round.redisCpuMicros !== undefined)
    ? sum((round) => round.redisCpuMicros ?? 0) / answered
    : undefined;

  return {
    target,
    scenario,
    rounds: rounds.length,
    ok: sum((round) => round.ok),
    failed: sum((round) => round.failed),
    rps: sum((round) => round.ok) / sum((round) => round.durationS),
    p50Ms: sum((round) => round.p50Ms) / rounds.length,
    p99Ms: sum((round) => round.p99Ms) / rounds.length,
    cpuMicrosPerRequest: sum((round) => round.cpuMicros) / answered,
    redisMicrosPerRequest: redis,
    redisCommandsPerRequest: commandsPerRequest(rounds, answered),
    peakRssMb: Math.max(...rounds.map((round) => round.peakRssMb)),
    foreignCores: sum((round) => round.foreignCores) / rounds.length,
  };
}

function commandsPerRequest(rounds: RoundMeasure[], answered: number): CommandStats | undefined {
  if (rounds.some((round) => round.redisCommands === undefined)) return undefined;

  const total: CommandStats = new Map();
  for (const round of rounds) addCommands(total, round.redisCommands ?? new Map());
  const perRequest: CommandStats = new Map();
  for (const [name, tally] of total) {
    perRequest.set(name, { calls: tally.calls / answered, usec: tally.usec / answered });
  }
  return perRequest;
}

/** Commands that run a script; Redis also counts each command the script calls. */
const SCRIPT_COMMANDS = new Set(['evalsha', 'eval', 'evalsha_ro', 'eval_ro', 'fcall', 'fcall_ro']);

/**
 * Redis work behind each gateway request: round trips are what a 1-connection client waits
 * for, and the time in scripts is CPU that the shared cores cannot give to the gateway.
 * INFO counts a script's inner commands as well as the script, so they are listed apart and
 * their time is not added twice.
 */
export function printRedisWork(summaries: Summary[]): void {
  const measured = summaries.filter((line) => line.redisCommandsPerRequest !== undefined);
  if (measured.length === 0) return;

  console.log('redis per gateway request (INFO commandstats; CPU from /proc):');
  for (const line of measured) {
    const commands = [...(line.redisCommandsPerRequest ?? new Map<string, CommandTally>())];
    const scripts = commands.filter(([name]) => SCRIPT_COMMANDS.has(name));
    const others = commands.filter(([name]) => !SCRIPT_COMMANDS.has(name));
    const total = (list: [string, CommandTally][], pick: (tally: CommandTally) => number) =>
      list.reduce((sum, [, tally]) => sum + pick(tally), 0);
    const listed = (list: [string, CommandTally][]) =>
      list
        .sort((a, b) => b[1].calls - a[1].calls)
        .map(([name, tally]) => `${name} ${tally.calls.toFixed(1)}`)
        .join(', ');

    const name = `${line.scenario.mode} ${line.scenario.connections}c`.padEnd(10);
    const cpu = line.redisMicrosPerRequest?.toFixed(0) ?? '-';
    const usec = total(scripts, (tally) => tally.usec).toFixed(0);
    console.log(
      `  ${name} ${total(scripts, (tally) => tally.calls).toFixed(2)} script calls ` +
        `(${listed(scripts)}), ${usec} µs in scripts, redis-server CPU ${cpu} µs`,
    );
    console.log(`  ${''.padEnd(10)} commands, in scripts or not: ${listed(others)}`);
  }
}

const COLUMNS = [
  ['target', 9],
  ['mode', 7],
  ['conns', 6],
  ['rps', 8],
  ['p50 ms', 8],
  ['p99 ms', 8],
  ['CPU µs/req', 11],
  ['redis µs/req', 13],
  ['peak RSS MB', 12],
  ['failed', 7],
  ['others', 7],
] as const;

function row(cells: string[]): string {
  return cells.map((cell, i) => cell.padStart(COLUMNS[i]?.[1] ?? 8)).join(' ');
}

export function printTable(summaries: Summary[]): void {
  console.log('(others: cores used meanwhile by processes outside the bench; 2 cores in all)');
  console.log(row(COLUMNS.map(([title]) => title)));
  for (const line of summaries) {
    console.log(
      row([
        line.target,
        line.scenario.mode,
        String(line.scenario.connections),
        line.rps.toFixed(0),
        line.p50Ms.toFixed(3),
        line.p99Ms.toFixed(3),
        line.cpuMicrosPerRequest.toFixed(0),
        line.redisMicrosPerRequest === undefined ? '-' : line.redisMicrosPerRequest.toFixed(0),
        line.peakRssMb.toFixed(1),
        String(line.failed),
        line.foreignCores.toFixed(2),
      ]),
    );
  }
}

/** TTFB samples of one target, streamed, one connection. */
export interface TtfbSummary {
  target: TargetName;
  count: number;
  p50Ms: number;
  p99Ms: number;
}

export function summarizeTtfb(target: TargetName, samples: number[]): TtfbSummary {
  return {
    target,
    count: samples.length,
    p50Ms: percentile(samples, 0.5),
    p99Ms: percentile(samples, 0.99),
  };
}

export function printTtfb(summaries: TtfbSummary[]): void {
  console.log('time to first streamed byte, 1 connection, sequential:');
  for (const line of summaries) {
    const figures = `p50 ${line.p50Ms.toFixed(3)} ms  p99 ${line.p99Ms.toFixed(3)} ms`;
    console.log(`  ${line.target.padEnd(9)} n=${String(line.count).padEnd(5)} ${figures}`);
  }
}

function find(summaries: Summary[], target: TargetName, key: string): Summary | undefined {
  return summaries.find((line) => line.target === target && scenarioKey(line.scenario) === key);
}

/** Gateway against floor for every scenario both ran: throughput ratio and added p50. */
export function printRatios(summaries: Summary[], ttfb: TtfbSummary[]): void {
  console.log('gateway / floor:');
  for (const gateway of summaries.filter((line) => line.target === 'gateway')) {
    const floor = find(summaries, 'floor', scenarioKey(gateway.scenario));
    if (floor === undefined) continue;
    const ratio = (gateway.rps / floor.rps).toFixed(2);
    const added = signed(gateway.p50Ms - floor.p50Ms);
    const name = `${gateway.scenario.mode} ${gateway.scenario.connections}c`.padEnd(10);
    console.log(`  ${name} throughput ${ratio}x  p50 ${added} ms`);
  }

  const floorTtfb = ttfb.find((line) => line.target === 'floor');
  const gatewayTtfb = ttfb.find((line) => line.target === 'gateway');
  if (floorTtfb && gatewayTtfb) {
    console.log(`  stream TTFB p50 ${signed(gatewayTtfb.p50Ms - floorTtfb.p50Ms)} ms`);
  }
}

function signed(ms: number): string {
  return `${ms >= 0 ? '+' : ''}${ms.toFixed(3)}`;
}

/**
 * The budget, printed as measured facts. A MISS is information for whoever reads the
 * run, not a failure of the bench: the machine is shared and two cores are few.
 */
export function printBudget(summaries: Summary[], ttfb: TtfbSummary[]): void {
  const check = (what: string, measured: string, pass: boolean | undefined): void => {
    const verdict = pass === undefined ? 'N/A ' : pass ? 'PASS' : 'MISS';
    console.log(`budget ${verdict}  ${what}: ${measured}`);
  };

  const floorPlain50 = find(summaries, 'floor', 'plain/50');
  const gatewayPlain50 = find(summaries, 'gateway', 'plain/50');
  if (floorPlain50 && gatewayPlain50) {
    const ratio = gatewayPlain50.rps / floorPlain50.rps;
    const rates = `${gatewayPlain50.rps.toFixed(0)} / ${floorPlain50.rps.toFixed(0)} rps`;
    const measured = `${rates} = ${ratio.toFixed(2)}`;
    check('throughput >= 0.75 x floor, 50 conns, plain', measured, ratio >= 0.75);
  } else check('throughput >= 0.75 x floor, 50 conns, plain', 'not measured', undefined);

  for (const mode of ['plain', 'stream'] as const) {
    const floor = find(summaries, 'floor', `${mode}/1`);
    const gateway = find(summaries, 'gateway', `${mode}/1`);
    const what = `added p50 <= 0.5 ms, 1 conn, ${mode}`;
    if (floor && gateway) {
      const added = gateway.p50Ms - floor.p50Ms;
      check(what, `${signed(added)} ms`, added <= 0.5);
    } else check(what, 'not measured', undefined);
  }

  const floorTtfb = ttfb.find((line) => line.target === 'floor');
  const gatewayTtfb = ttfb.find((line) => line.target === 'gateway');
  if (floorTtfb && gatewayTtfb) {
    const added = gatewayTtfb.p50Ms - floorTtfb.p50Ms;
    check('added time to first streamed byte <= 1 ms (p50)', `${signed(added)} ms`, added <= 1);
  } else check('added time to first streamed byte <= 1 ms (p50)', 'not measured', undefined);

  const gateway50 = summaries.filter(
    (line) => line.target === 'gateway' && line.scenario.connections === 50,
  );
  if (gateway50.length > 0) {
    const peak = Math.max(...gateway50.map((line) => line.peakRssMb));
    check('gateway RSS < 200 MB at 50 conns', `peak ${peak.toFixed(1)} MB`, peak < 200);
  } else check('gateway RSS < 200 MB at 50 conns', 'not measured', undefined);

  console.log('budget (soak)  RSS flat across the soak: see `npm run bench -- --soak`');
}
