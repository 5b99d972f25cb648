import { connect } from 'node:net';

/** Calls of one Redis command and the µs Redis spent executing them (INFO commandstats). */
export interface CommandTally {
  calls: number;
  usec: number;
}

export type CommandStats = Map<string, CommandTally>;

/**
 * Reads `INFO commandstats` from the bench's private Redis with one inline command on a fresh
 * socket: enough for a reading taken between rounds, and no client library in the way.
 */
export function readCommandStats(port: number): Promise<CommandStats> {
  return new Promise((done, fail) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    socket.setTimeout(5_000);
    socket.once('connect', () => socket.write('INFO commandstats\r\n'));
    socket.on('data', (part) => {
      reply += part.toString('utf8');
      const body = completeBulkString(reply);
      if (body === undefined) return;
      socket.destroy();
      done(parseCommandStats(body));
    });
    socket.once('error', fail);
    socket.once('timeout', () => {
      socket.destroy();
      fail(new Error('redis INFO timed out'));
    });
  });
}

/** The payload of a RESP bulk string once all of it has arrived (`$<length>\r\n<bytes>\r\n`). */
function completeBulkString(reply: string): string | undefined {
  const headerEnd = reply.indexOf('\r\n');
  if (!reply.startsWith('$') || headerEnd < 0) return undefined;

  const length = Number(reply.slice(1, headerEnd));
  const body = Buffer.from(reply.slice(headerEnd + 2), 'utf8');
  return body.length >= length ? body.subarray(0, length).toString('utf8') : undefined;
}

function parseCommandStats(info: string): CommandStats {
  const stats: CommandStats = new Map();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    const [, name, calls, usec] = match;
    if (name !== undefined) stats.set(name, { calls: Number(calls), usec: Number(usec) });
  }
  return stats;
}

/** What happened between two readings, leaving out the bench's own INFO calls. */
export function commandsBetween(before: CommandStats, after: CommandStats): CommandStats {
  const delta: CommandStats = new Map();
  for (const [name, tally] of after) {
    if (name === 'info') continue;
    const earlier = before.get(name) ?? { calls: 0, usec: 0 };
    const calls = tally.calls - earlier.calls;
    if (calls > 0) delta.set(name, { calls, usec: tally.usec - earlier.usec });
  }
  return delta;
}

/** Adds `more` into `total`, command by command. */
export function addCommands(total: CommandStats, more: CommandStats): void {
  for (const [name, tally] of more) {
    const sum = total.get(name) ?? { calls: 0, usec: 0 };
    total.set(name, { calls: sum.calls + tally.calls, usec: sum.usec + tally.usec });
  }
}
