import type { Server } from 'node:net';
import { pathToFileURL } from 'node:url';

/** What a bench child program sends its parent over IPC once it accepts connections. */
export interface ListeningMessage {
  listening: number;
}

/** True when the module at `moduleUrl` is the program node was started with. */
export function isMainModule(moduleUrl: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && pathToFileURL(entry).href === moduleUrl;
}

/**
 * Tells the parent which port the child bound, and ties the child's life to the parent's: if the
 * bench dies without killing its children (SIGKILL, OOM), the IPC channel closes and the child
 * exits instead of holding its port.
 */
export function announceListening(server: Server): void {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const message: ListeningMessage = { listening: port };
  process.send?.(message);
  process.on('disconnect', () => process.exit(0));
}

/** Reads a non-negative integer from the environment, with a default. */
export function envInteger(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;

  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be an integer >= 0`);
  return value;
}
