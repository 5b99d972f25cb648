import type { Context } from 'hono';
import type { Deps } from '../deps.js';

/** 200 once Redis is reachable and the scripts are loaded; 503 otherwise. */
export function healthCheck(deps: Deps) {
  return function healthz(c: Context) {
    const ready = deps.redis.status === 'ready' && deps.scripts.loaded;
    return c.json(
      { status: ready ? 'ok' : 'unavailable', redis: deps.redis.status },
      ready ? 200 : 503,
    );
  };
}
