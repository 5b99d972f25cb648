import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';

export interface RedisServerOptions {
  /** Folder for the append-only file; created when missing. */
  dir: string;
  /** TCP port on 127.0.0.1; when absent the server listens on a Unix socket in `dir` only. */
  port?: number;
  /** `everysec` (the default) may lose the last second to a crash; tests that kill use `always`. */
  fsync?: 'always' | 'everysec';
}

export interface RedisServer {
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

const INSTALL_HINT =
  'redis-server was not found on PATH. Install Redis 7 (Debian/Ubuntu: `apt-get install ' +
  'redis-server`; macOS: `brew install redis`) or set REDIS_URL to a running Redis.';

/**
 * Starts a private `redis-server` whose data survives restarts (append-only file, fsync every
 * second) and resolves once it accepts connections.
 */
export async function startRedisServer(options: RedisServerOptions): Promise<RedisServer> {
  const dir = resolve(options.dir);
  mkdirSync(dir, { recursive: true });
  const socket = resolve(dir, 'redis.sock');
  const listen = options.port
    ? ['--port', String(options.port), '--bind', '127.0.0.1']
    : ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '700'];

  const child = spawn(
    'redis-server',
    [
      ...listen,
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      options.fsync ?? 'everysec',
      '--save',
      '',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await waitUntilReady(child);

  const url = options.port ? `redis://127.0.0.1:${options.port}` : `redis+unix://${socket}`;
  return { url, process: child, stop: () => stopRedisServer(child) };
}

const START_TIMEOUT_MS = 10_000;

function waitUntilReady(child: ChildProcess): Promise<void> {
  return new Promise((resolveReady, reject) => {
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-server did not start within ${START_TIMEOUT_MS} ms: ${output}`));
    }, START_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      // Redis says "Ready to accept connections" for TCP and "now ready to accept connections
      // at <path>" for a Unix socket.
      if (/ready to accept connections/i.test(output)) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stderr?.off('data', onData);
        // Keep draining both pipes so that a chatty server never blocks on a full one.
        child.stdout?.resume();
        child.stderr?.resume();
        resolveReady();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(error.code === 'ENOENT' ? new Error(INSTALL_HINT) : error);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with code ${code} before it was ready: ${output}`));
    });
  });
}

async function stopRedisServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}
