import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RedisServer, startRedisServer } from '../../src/store/embedded.js';

/** A free TCP port on loopback, for servers that must come back on the same port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A private redis-server for one test file, with an append-only file in a temporary folder, so
 * that a test can kill it and start it again on the same port with its data.
 */
export class TestRedis {
  readonly dir = mkdtempSync(join(tmpdir(), 'lcgw-redis-'));
  port = 0;
  #server: RedisServer | undefined;

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    if (this.port === 0) this.port = await freePort();
    this.#server = await startRedisServer({ dir: this.dir, port: this.port, fsync: 'always' });
    return this;
  }

  /** Kills the server abruptly, as a crash or a network cut would. */
  async kill(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    const exited = new Promise((resolve) => server.process.once('exit', resolve));
    server.process.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    await this.#server?.stop();
    this.#server = undefined;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
