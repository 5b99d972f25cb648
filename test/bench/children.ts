import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** The repository root, two folders above this file. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const running = new Set<ChildProcess>();

/**
 * Spawns a child that dies with the bench: it is killed on normal exit, on an uncaught error and
 * on SIGINT/SIGTERM (see `killChildrenOnExit`). A child that dies on its own is forgotten.
 */
export function spawnTracked(command: string, args: string[], options: SpawnOptions): ChildProcess {
  const child = spawn(command, args, options);
  running.add(child);
  child.once('exit', () => running.delete(child));
  child.once('error', () => running.delete(child));
  return child;
}

/**
 * Installs the handlers that leave no child and no scratch folder behind, whichever way the
 * bench ends.
 */
export function cleanUpOnExit(scratchDir: string): void {
  // 'exit' handlers run synchronously, so only SIGKILL is certain to be delivered in time.
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
    rmSync(scratchDir, { recursive: true, force: true });
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\nbench: ${signal}, stopping children`);
      process.exit(130);
    });
  }
}

/**
 * Stops one child politely and waits for it; SIGKILL after `graceMs`. Returns how it ended so
 * a gateway that ignores SIGTERM shows up in the report.
 */
export async function stopChild(
  child: ChildProcess,
  graceMs: number,
): Promise<{ exitedAfterMs: number; killed: boolean; code: number | null }> {
  const started = performance.now();
  if (child.exitCode !== null || child.signalCode !== null) {
    return { exitedAfterMs: 0, killed: false, code: child.exitCode };
  }

  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  const code = await exited;
  clearTimeout(timer);

  const exitedAfterMs = performance.now() - started;
  return { exitedAfterMs, killed: exitedAfterMs >= graceMs, code };
}

/**
 * Asks the kernel for a free loopback port. Another process may take it before the caller binds
 * it; the window is small and a clash fails loudly at start-up, so the bench accepts the race.
 */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => done(port));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

/**
 * Polls `probe` until it returns true, failing after `timeoutMs` or as soon as `child` exits
 * (a child that died at start-up will never become ready).
 */
export async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  child?: ChildProcess,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`${what}: process exited (code ${child.exitCode}, ${child.signalCode})`);
    }
    if (await probe().catch(() => false)) return;
    await sleep(50);
  }
  throw new Error(`${what}: not ready after ${timeoutMs} ms`);
}

/** The bench's own child programs, compiled to plain JavaScript by `compileChildPrograms`. */
const CHILD_SOURCES = ['upstream.ts', 'floor.ts', 'child.ts'];

/**
 * Compiles the upstream and floor programs to JavaScript in `outDir` so they run under plain
 * `node`. Running them through tsx would load its compiler into each child and add ~50 MB of
 * RSS, which would make the floor's memory figure meaningless next to the compiled gateway.
 * A `node_modules` link lets the compiled files resolve hono and undici from the repository.
 */
export function compileChildPrograms(outDir: string): string {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'package.json'), '{"type":"module"}\n');
  symlinkSync(join(repoRoot, 'node_modules'), join(outDir, 'node_modules'), 'dir');

  for (const file of CHILD_SOURCES) {
    const source = readFileSync(join(repoRoot, 'test', 'bench', file), 'utf8');
    const output = ts.transpileModule(source, {
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2022,
        verbatimModuleSyntax: true,
      },
      fileName: file,
    });
    writeFileSync(join(outDir, file.replace(/\.ts$/, '.js')), output.outputText);
  }

  return outDir;
}
