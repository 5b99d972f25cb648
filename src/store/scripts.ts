import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import type { GatewayMetrics } from '../metrics/metrics.js';

/** The Lua scripts in `lua/`, each one atomic balance decision. */
export const SCRIPT_NAMES = [
  'admit',
  'settle',
  'release',
  'create_account',
  'top_up',
  'set_suspension',
  'account_state',
  'grant_credits',
  'grant_pack',
  'request_refund',
  'approve_refund',
  'reject_refund',
] as const;

export type ScriptName = (typeof SCRIPT_NAMES)[number];

type ScriptReply = number | string | null | ScriptReply[];

const INCLUDE = /^--- @include "([a-z_]+)"$/gm;

/** The package's `lua/` folder, found from this module whether it runs from `src/` or `dist/`. */
function findLuaDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'lua', 'admit.lua'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('The lua/ folder was not found beside the gateway.');
    dir = parent;
  }
  return join(dir, 'lua');
}

/**
 * Expands `--- @include "name"` lines with `lua/includes/name.lua`, each include once and
 * before its first use, so that a script ships to Redis as one self-contained source.
 */
export function expandIncludes(source: string, luaDir: string, seen = new Set<string>()): string {
  return source.replace(INCLUDE, (_line, name: string) => {
    if (seen.has(name)) return '';
    seen.add(name);
    const include = readFileSync(join(luaDir, 'includes', `${name}.lua`), 'utf8');
    return expandIncludes(include, luaDir, seen);
  });
}

/**
 * Loads every script once with SCRIPT LOAD and runs them by EVALSHA. A Redis that restarted
 * without its script cache answers NOSCRIPT; the script is then loaded again and the call
 * repeated once, which is safe because the call never ran.
 */
export class Scripts {
  readonly #redis: Redis;
  readonly #metrics: GatewayMetrics;
  readonly #sources = new Map<ScriptName, string>();
  readonly #shas = new Map<ScriptName, string>();

  constructor(redis: Redis, metrics: GatewayMetrics, luaDir = findLuaDir()) {
    this.#redis = redis;
    this.#metrics = metrics;
    for (const name of SCRIPT_NAMES) {
      const source = readFileSync(join(luaDir, `${name}.lua`), 'utf8');
      this.#sources.set(name, expandIncludes(source, luaDir));
    }
  }

  async load(): Promise<void> {
    for (const [name, source] of this.#sources) {
      this.#shas.set(name, String(await this.#redis.script('LOAD', source)));
    }
  }

  get loaded(): boolean {
    return this.#shas.size === this.#sources.size;
  }

  async run(name: ScriptName, keys: string[], args: (string | number)[]): Promise<ScriptReply> {
    const started = performance.now();
    let result = 'ok';
    try {
      return await this.#evalsha(name, keys, args);
    } catch (error) {
      result = 'error';
      throw error;
    } finally {
      const seconds = (performance.now() - started) / 1000;
      this.#metrics.redisScriptDuration.observe({ script: name, result }, seconds);
    }
  }

  async #evalsha(name: ScriptName, keys: string[], args: (string | number)[]) {
    const sha = this.#shas.get(name) ?? (await this.#reload(name));
    try {
      return (await this.#redis.evalsha(sha, keys.length, ...keys, ...args)) as ScriptReply;
    } catch (error) {
      if (!String((error as Error).message).startsWith('NOSCRIPT')) throw error;
      const fresh = await this.#reload(name);
      return (await this.#redis.evalsha(fresh, keys.length, ...keys, ...args)) as ScriptReply;
    }
  }

  async #reload(name: ScriptName): Promise<string> {
    const sha = String(await this.#redis.script('LOAD', this.#sources.get(name) as string));
    this.#shas.set(name, sha);
    return sha;
  }
}
