import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { ListeningMessage } from './child.js';
import { freePort, repoRoot, spawnTracked, waitUntil } from './children.js';

/** One process of the bench stack. */
export interface Service {
  name: string;
  pid: number;
  port: number;
  child: ChildProcess;
}

export interface GatewayService extends Service {
  adminPort: number;
  logPath: string;
}

export const UPSTREAM_KEY = 'sk-upstream';
export const ADMIN_TOKEN = 'bench';

const READY_TIMEOUT_MS = 30_000;

/**
 * Starts one of the bench's compiled child programs on a port of its choosing and waits for it
 * to say, over IPC, which one it bound.
 */
function startChildProgram(
  name: string,
  programPath: string,
  env: Record<string, string>,
): Promise<Service> {
  const child = spawnTracked(process.execPath, [programPath], {
    env: { ...process.env, ...env, PORT: '0' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });

  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`${name}: not listening after 30 s`)), 30_000);
    child.once('exit', (code) => fail(new Error(`${name}: exited at start-up (code ${code})`)));
    child.once('message', (message: ListeningMessage) => {
      clearTimeout(timer);
      // The channel stays open only so the child notices if the bench dies; it needs no ref.
      child.channel?.unref();
      done({ name, pid: child.pid ?? 0, port: message.listening, child });
    });
  });
}

export function startUpstream(programDir: string, chunkDelayMs: number): Promise<Service> {
  return startChildProgram('upstream', join(programDir, 'upstream.js'), {
    UPSTREAM_API_KEY: UPSTREAM_KEY,
    CHUNK_DELAY_MS: String(chunkDelayMs),
  });
}

export function startFloor(programDir: string, upstream: Service): Promise<Service> {
  return startChildProgram('floor', join(programDir, 'floor.js'), {
    UPSTREAM_OPENAI_URL: `http://127.0.0.1:${upstream.port}/openai`,
    UPSTREAM_API_KEY: UPSTREAM_KEY,
  });
}

/** A private redis-server with no persistence: the bench must not be slowed by disk writes. */
export async function startRedis(dataDir: string): Promise<Service> {
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly'];
  args.push('no', '--dir', dataDir);
  const child = spawnTracked('redis-server', args, { stdio: ['ignore', 'ignore', 'inherit'] });

  await waitUntil('redis-server', () => redisAnswersPing(port), READY_TIMEOUT_MS, child);
  return { name: 'redis', pid: child.pid ?? 0, port, child };
}

function redisAnswersPing(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(1000);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (reply) => {
      socket.destroy();
      done(reply.toString().startsWith('+PONG'));
    });
    socket.once('error', () => done(false));
    socket.once('timeout', () => {
      socket.destroy();
      done(false);
    });
  });
}

/** Compiles the gateway, as `npm start` would, so the bench measures the code in src/ now. */
export function buildGateway(): void {
  if (!existsSync(join(repoRoot, 'src', 'main.ts'))) {
    throw new Error('src/main.ts does not exist yet: run with --targets upstream,floor');
  }
  const build = spawnSync('npm', ['run', 'build'], { cwd: repoRoot, stdio: 'inherit' });
  if (build.status !== 0) throw new Error(`npm run build failed (status ${build.status})`);
}

/**
 * Starts `node dist/src/main.js` with its log and settlement journal in `scratchDir`, and waits
 * for the admin listener's /healthz, which answers 200 once Redis is reachable and the scripts
 * are loaded. `nodeFlags` go before the script (e.g. `--cpu-prof` to find a hotspot).
 */
export async function startGateway(
  redis: Service,
  upstream: Service,
  scratchDir: string,
  nodeFlags: string[] = [],
): Promise<GatewayService> {
  const logPath = join(scratchDir, 'gateway.log');
  const port = await freePort();
  const adminPort = await freePort();
  const log = openSync(logPath, 'a');
  const child = spawnTracked(process.execPath, [...nodeFlags, join('dist', 'src', 'main.js')], {
    cwd: repoRoot,
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: String(port),
      ADMIN_HOST: '127.0.0.1',
      ADMIN_PORT: String(adminPort),
      ADMIN_TOKEN,
      REDIS_URL: `redis://127.0.0.1:${redis.port}`,
      UPSTREAM_OPENAI_URL: `http://127.0.0.1:${upstream.port}/openai`,
      UPSTREAM_API_KEY: UPSTREAM_KEY,
      LOG_LEVEL: 'warn',
      // Not in the contract, but the gateway reads it: keep its journal out of the work tree.
      SETTLEMENT_JOURNAL_DIR: join(scratchDir, 'settlements'),
    },
    stdio: ['ignore', log, log],
  });
  closeSync(log);

  const healthz = `http://127.0.0.1:${adminPort}/healthz`;
  try {
    await waitUntil('gateway', async () => (await fetch(healthz)).status === 200, 30_000, child);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- gateway log ---\n${logTail(logPath, 40)}`);
  }
  return { name: 'gateway', pid: child.pid ?? 0, port, adminPort, logPath, child };
}

export function logTail(logPath: string, lines: number): string {
  try {
    return readFileSync(logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Opens the bench account through the operator API, as an operator would: create it, issue a
 * key, top it up with enough to never run dry. Returns the client key.
 */
export async function openAccount(gateway: GatewayService, accountId: string): Promise<string> {
  await adminPost(gateway, '/admin/accounts', { id: accountId }, 201);
  const key = (await adminPost(gateway, `/admin/accounts/${accountId}/keys`, undefined, 201)) as {
    key?: unknown;
  };
  if (typeof key.key !== 'string') throw new Error('key issue answered without a key');

  const topUp = { order_id: 'o1', amount: '1000000', method: 'alipay' };
  await adminPost(gateway, `/admin/accounts/${accountId}/topups`, topUp, 201);
  return key.key;
}

async function adminPost(
  gateway: GatewayService,
  path: string,
  body: unknown,
  expected: number,
): Promise<unknown> {
  const response = await fetch(`http://127.0.0.1:${gateway.adminPort}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (response.status !== expected) {
    throw new Error(`POST ${path}: expected ${expected}, got ${response.status}: ${text}`);
  }
  return text === '' ? {} : JSON.parse(text);
}
