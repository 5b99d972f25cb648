import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * Builds `dist/` once before the test files run, for the tests that start the gateway or the CLI
 * as a child process the way `npm start` and `npx longcat-gateway` do.
 */
export function setup(): void {
  execFileSync('npm', ['run', 'build'], { cwd: join(import.meta.dirname, '..'), stdio: 'inherit' });
}
