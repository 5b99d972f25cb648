import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from './support/redis.js';

const ROOT = join(import.meta.dirname, '..');
// Built by test/global-setup.ts, as `npm start` builds it first.
const MAIN = join(ROOT, 'dist', 'src', 'main.js');

let child: ChildProcess | undefined;

afterEach(async () => {
  if (child && child.exitCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
  child = undefined;
});

/** Collects a child's output and resolves once `pattern` appears in it. */
function waitForOutput(process: ChildProcess, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (pattern.test(output)) resolve(output);
    };
    process.stdout?.on('data', onData);
    process.stderr?.on('data', onData);
    process.once('exit', (code) => reject(new Error(`exited with ${code}: ${output}`)));
  });
}

describe('npm start without REDIS_URL', () => {
  it('runs a private redis-server with an append-only file, and stops it on SIGTERM', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'lcgw-start-'));
    const [port, adminPort] = [await freePort(), await freePort()];
    child = spawn(process.execPath, [MAIN], {
      cwd,
      env: { ...process.env, PORT: String(port), ADMIN_PORT: String(adminPort), HOST: '127.0.0.1' },
    });
    const started = await waitForOutput(child, /"msg":"gateway started"/);
    expect(started).toContain('"redis":"embedded"');

    const health = await fetch(`http://127.0.0.1:${adminPort}/healthz`);
    expect(health.status).toBe(200);
    expect(existsSync(join(cwd, 'data', 'redis', 'appendonlydir'))).toBe(true);
    // Without ADMIN_TOKEN the operator API is off, and the log said why.
    expect((await fetch(`http://127.0.0.1:${adminPort}/admin/accounts/x`)).status).toBe(503);
    expect(started).toContain('ADMIN_TOKEN is not set');

    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = await exited;
    expect(code).toBe(0);
    expect(existsSync(join(cwd, 'data', 'redis', 'redis.sock'))).toBe(false);
  });

  it('names how to install redis-server when the binary is missing', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'lcgw-start-'));
    child = spawn(process.execPath, [MAIN], {
      cwd,
      env: { ...process.env, PATH: '/nonexistent', PORT: '0', ADMIN_PORT: '0' },
    });
    const output = await new Promise<string>((resolve) => {
      let text = '';
      child?.stderr?.on('data', (chunk: Buffer) => {
        text += chunk.toString();
      });
      child?.once('exit', (code) => resolve(`${code}: ${text}`));
    });
    expect(output).toMatch(/^1: /);
    expect(output).toContain('apt-get install redis-server');
    expect(output).toContain('REDIS_URL');
  });
});
