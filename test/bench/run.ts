import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ALL_SCENARIOS, runBench, type Target } from './bench.js';
import { cleanUpOnExit, compileChildPrograms, freePort, repoRoot, stopChild } from './children.js';
import { InspectorSession } from './inspector.js';
import { defaultDriver, type LoadDriver } from './load.js';
import { type Scenario, scenarioKey, type TargetName } from './report.js';
import { runSoak } from './soak.js';
import {
  buildGateway,
  type GatewayService,
  openAccount,
  type Service,
  startFloor,
  startGateway,
  startRedis,
  startUpstream,
  UPSTREAM_KEY,
} from './stack.js';

const USAGE = `npm run bench -- [options]

  --duration S         seconds per load round (default 5)
  --rounds N           interleaved rounds of upstream, floor, gateway (default 2)
  --ttfb-requests N    sequential streamed requests per target for TTFB (default 400)
  --targets LIST       comma list of upstream,floor,gateway (default all three)
  --scenarios LIST     comma list of MODE/CONNECTIONS (default plain/1,plain/50,stream/1,stream/50)
  --driver NAME        wrk or autocannon (default wrk when installed)
  --skip-build         use dist/ as it is instead of running npm run build
  --cpu-prof DIR       write a V8 CPU profile of the gateway into DIR when it stops
  --soak               soak the gateway instead: streamed requests, aborts, RSS, ledger
  --soak-requests N    (default 10000)
  --soak-concurrency N (default 50)
  --abort-share F      share of soak clients that hang up after the first chunk (default 0.2)
  --settle S           quiet seconds after the soak before the end RSS and ledger (default 10)
`;

interface RunOptions {
  durationS: number;
  rounds: number;
  ttfbRequests: number;
  targets: TargetName[];
  scenarios: Scenario[];
  driver: LoadDriver;
  build: boolean;
  cpuProfileDir: string | undefined;
  soak: boolean;
  soakRequests: number;
  soakConcurrency: number;
  abortShare: number;
  settleS: number;
}

/** Upper bounds that keep every load finite whatever the flags say. */
const MAX_DURATION_S = 600;
const MAX_ROUNDS = 20;
const MAX_SOAK_REQUESTS = 1_000_000;
const ALL_TARGETS: TargetName[] = ['upstream', 'floor', 'gateway'];

function readOptions(): RunOptions {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '2' },
      'ttfb-requests': { type: 'string', default: '400' },
      targets: { type: 'string', default: ALL_TARGETS.join(',') },
      scenarios: { type: 'string', default: ALL_SCENARIOS.map(scenarioKey).join(',') },
      driver: { type: 'string' },
      'skip-build': { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
      soak: { type: 'boolean', default: false },
      'soak-requests': { type: 'string', default: '10000' },
      'soak-concurrency': { type: 'string', default: '50' },
      'abort-share': { type: 'string', default: '0.2' },
      settle: { type: 'string', default: '10' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }

  return {
    durationS: bounded('--duration', values.duration, 1, MAX_DURATION_S),
    rounds: bounded('--rounds', values.rounds, 1, MAX_ROUNDS),
    ttfbRequests: bounded('--ttfb-requests', values['ttfb-requests'], 1, 100_000),
    targets: parseTargets(values.targets),
    scenarios: parseScenarios(values.scenarios),
    driver: parseDriver(values.driver),
    build: !values['skip-build'],
    cpuProfileDir: values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']),
    soak: values.soak,
    soakRequests: bounded('--soak-requests', values['soak-requests'], 1, MAX_SOAK_REQUESTS),
    soakConcurrency: bounded('--soak-concurrency', values['soak-concurrency'], 1, 1000),
    abortShare: bounded('--abort-share', values['abort-share'], 0, 1),
    settleS: bounded('--settle', values.settle, 0, 600),
  };
}

function bounded(flag: string, raw: string, min: number, max: number): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new Error(`${flag} must be a number from ${min} to ${max}, got ${raw}`);
  }
  return value;
}

function parseTargets(raw: string): TargetName[] {
  const names = raw.split(',').map((name) => name.trim());
  for (const name of names) {
    if (!ALL_TARGETS.includes(name as TargetName)) throw new Error(`unknown target ${name}`);
  }
  // Always in the order upstream, floor, gateway, so rounds read the same way every time.
  return ALL_TARGETS.filter((name) => names.includes(name));
}

function parseScenarios(raw: string): Scenario[] {
  return raw.split(',').map((text) => {
    const [mode, connections] = text.trim().split('/');
    const count = Number(connections);
    if ((mode !== 'plain' && mode !== 'stream') || !Number.isInteger(count) || count < 1) {
      throw new Error(`a scenario is MODE/CONNECTIONS like stream/50, got ${text}`);
    }
    if (count > 1000) throw new Error('at most 1000 connections');
    return { mode, connections: count };
  });
}

function parseDriver(raw: string | undefined): LoadDriver {
  if (raw === undefined) return defaultDriver();
  if (raw !== 'wrk' && raw !== 'autocannon') throw new Error(`unknown driver ${raw}`);
  return raw;
}

/** The processes a run started, so that the end of the run can stop them in order. */
interface Stack {
  upstream: Service;
  floor?: Service;
  redis?: Service;
  gateway?: GatewayService;
  key?: string;
}

/** Which processes a run needs, and how they are set up. */
interface StackPlan {
  /** Pause between the upstream's streamed events. */
  chunkDelayMs: number;
  floor: boolean;
  gateway: boolean;
  /** Starts the gateway with the inspector on this loopback port (the soak forces GC). */
  inspectorPort?: number;
}

async function startStack(scratch: string, options: RunOptions, plan: StackPlan): Promise<Stack> {
  const programs = compileChildPrograms(join(scratch, 'programs'));
  const upstream = await startUpstream(programs, plan.chunkDelayMs);
  const floor = plan.floor ? await startFloor(programs, upstream) : undefined;
  if (!plan.gateway) return { upstream, floor };

  if (options.build) buildGateway();
  const redisDir = join(scratch, 'redis');
  mkdirSync(redisDir);
  const redis = await startRedis(redisDir);
  const gateway = await startGateway(redis, upstream, scratch, gatewayNodeFlags(options, plan));
  const key = await openAccount(gateway, 'bench');
  return { upstream, floor, redis, gateway, key };
}

function gatewayNodeFlags(options: RunOptions, plan: StackPlan): string[] {
  const flags: string[] = [];
  if (options.cpuProfileDir !== undefined) {
    flags.push('--cpu-prof', '--cpu-prof-dir', options.cpuProfileDir);
  }
  if (plan.inspectorPort !== undefined) flags.push(`--inspect=127.0.0.1:${plan.inspectorPort}`);
  return flags;
}

function benchTargets(stack: Stack): Target[] {
  const targets: Target[] = [
    {
      name: 'upstream',
      url: `http://127.0.0.1:${stack.upstream.port}/openai/v1/chat/completions`,
      headers: { authorization: `Bearer ${UPSTREAM_KEY}` },
      pid: stack.upstream.pid,
    },
  ];
  if (stack.floor) {
    targets.push({
      name: 'floor',
      url: `http://127.0.0.1:${stack.floor.port}/v1/chat/completions`,
      headers: {},
      pid: stack.floor.pid,
    });
  }
  if (stack.gateway && stack.key && stack.redis) {
    targets.push({
      name: 'gateway',
      url: `http://127.0.0.1:${stack.gateway.port}/v1/chat/completions`,
      headers: { authorization: `Bearer ${stack.key}` },
      pid: stack.gateway.pid,
      redis: { pid: stack.redis.pid, port: stack.redis.port },
    });
  }
  return targets;
}

function stackPids(stack: Stack): number[] {
  const services = [stack.upstream, stack.floor, stack.redis, stack.gateway];
  return services.flatMap((service) => (service ? [service.pid] : []));
}

function printHeader(options: RunOptions): void {
  const git = (...args: string[]): string =>
    execFileSync('git', ['-C', repoRoot, ...args], { encoding: 'utf8' }).trim();
  // The gateway is built from the work tree, which may be ahead of the commit.
  const dirty = git('status', '--porcelain', '--', 'src', 'lua') === '' ? '' : ' + local changes';
  const commit = `${git('rev-parse', '--short', 'HEAD')}${dirty}`;
  const cpu = cpus();
  console.log(
    `longcat gateway bench  ${new Date().toISOString()}  commit ${commit}  node ${process.version}`,
  );
  console.log(`${cpu.length} x ${cpu[0]?.model ?? 'unknown CPU'}; driver ${options.driver}`);
  if (!options.soak) {
    console.log(
      `${options.rounds} rounds x ${options.durationS} s per target and scenario; ` +
        `targets ${options.targets.join(', ')}`,
    );
  }
}

/** Stops the gateway first (it may still be settling), then what it depends on. */
async function stopStack(stack: Stack | undefined): Promise<void> {
  if (stack?.gateway) {
    const stopped = await stopChild(stack.gateway.child, 10_000);
    const how = stopped.killed ? 'did NOT exit on SIGTERM, killed' : `exit code ${stopped.code}`;
    console.log(`gateway stopped in ${stopped.exitedAfterMs.toFixed(0)} ms (${how})`);
    reportGatewayLog(stack.gateway.logPath);
  }
  for (const service of [stack?.floor, stack?.redis, stack?.upstream]) {
    if (service) await stopChild(service.child, 5_000);
  }
}

/**
 * The gateway runs at LOG_LEVEL=warn, so anything in its log deserves a look; node's own
 * inspector notices (the soak attaches one) are not the gateway's.
 */
function reportGatewayLog(logPath: string): void {
  const lines = readFileSync(logPath, 'utf8')
    .split('\n')
    .filter((line) => line !== '' && !INSPECTOR_NOTICE.test(line));
  console.log(`gateway log at warn level: ${lines.length} lines`);
  for (const line of lines.slice(0, 5)) console.log(`  ${line.slice(0, 300)}`);
}

const INSPECTOR_NOTICE = /^(Debugger (listening|attached|ending)|For help, see: )/;

async function soak(stack: Stack, options: RunOptions, inspectorPort: number): Promise<number> {
  const { gateway, upstream, key } = stack;
  if (!gateway || !key) throw new Error('the soak needs the gateway');

  const inspector = await InspectorSession.open(inspectorPort).catch((error: Error) => {
    console.log(`inspector unavailable (${error.message}): memory read without a forced GC`);
    return undefined;
  });
  const soakOptions = {
    requests: options.soakRequests,
    concurrency: options.soakConcurrency,
    abortShare: options.abortShare,
    settleS: options.settleS,
  };
  try {
    return (await runSoak(gateway, upstream, key, soakOptions, inspector)) ? 0 : 1;
  } finally {
    inspector?.close();
  }
}

async function main(): Promise<number> {
  const options = readOptions();
  const scratch = mkdtempSync(join(tmpdir(), 'longcat-bench-'));
  cleanUpOnExit(scratch);
  printHeader(options);

  // The soak's upstream pauses between events so that a client can abandon a stream midway.
  const plan: StackPlan = options.soak
    ? { chunkDelayMs: 1, floor: false, gateway: true, inspectorPort: await freePort() }
    : {
        chunkDelayMs: 0,
        floor: options.targets.includes('floor'),
        gateway: options.targets.includes('gateway'),
      };

  let stack: Stack | undefined;
  try {
    stack = await startStack(scratch, options, plan);
    if (plan.inspectorPort !== undefined) return await soak(stack, options, plan.inspectorPort);

    const targets = benchTargets(stack).filter((target) => options.targets.includes(target.name));
    await runBench(targets, { ...options, scratchDir: scratch, stackPids: stackPids(stack) });
    return 0;
  } finally {
    await stopStack(stack);
  }
}

main().then(
  (status) => process.exit(status),
  (error: unknown) => {
    console.error(`bench failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
