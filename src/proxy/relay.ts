import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { StreamMeter } from '../usage/meter.js';
import { SseSplitter } from '../usage/sse.js';

export interface StreamOutcome {
  /** The upstream body failed before its end (reset, idle timeout, request timeout). */
  broken: boolean;
  /** What the upstream body failed with, when it did. */
  failure?: unknown;
  /** The client went away before the end; the upstream was read to its end regardless. */
  clientGone: boolean;
  /** The status line and at least one event went to the client (or would have, had it stayed). */
  started: boolean;
}

export interface StreamHooks {
  /** Writes the status line and headers; called once, just before the first bytes go out. */
  start(): void;
  /** Bills the request; runs before the end of the stream is released. */
  settle(outcome: StreamOutcome): Promise<void>;
}

/**
 * Relays a metered event stream to the client as it arrives, and settles before the end.
 *
 * Events pass through as soon as they are whole, so the client sees each one when the upstream
 * sends it; nothing buffers the stream. The event that ends the stream (and anything after it)
 * is held until `settle` has run, so that a client that has read the end can already see the
 * charge. If the client disconnects, the upstream is still read to its end: the operator pays
 * LongCat for those tokens, and the usage only arrives at the end.
 *
 * The client's status line waits for the first event: until then nothing is promised, so a
 * stream that breaks or goes silent before its first event is neither started nor settled, and
 * the caller can still answer with an error status (502 or 504) and bill nothing, as for a
 * failure before the upstream's status line. Once an event went out, a break is settled (by
 * counting, when no usage came) and the client's connection is cut.
 *
 * Writes respect back-pressure: while the client's socket buffer is full, the upstream is not
 * read, so a slow client cannot make the gateway buffer the stream in memory.
 */
export async function relayStream(
  upstream: Readable,
  response: ServerResponse,
  meter: StreamMeter,
  hooks: StreamHooks,
): Promise<StreamOutcome> {
  const splitter = new SseSplitter();
  const held: Buffer[] = [];
  const outcome: StreamOutcome = { broken: false, clientGone: false, started: false };
  const onClose = () => {
    if (!response.writableFinished) outcome.clientGone = true;
  };
  response.on('close', onClose);
  const begin = () => {
    if (outcome.started) return;
    outcome.started = true;
    hooks.start();
  };

  try {
    for await (const chunk of upstream) {
      const ready = passable(splitter.push(chunk as Buffer), meter, held);
      if (ready.length === 0) continue;
      begin();
      if (outcome.clientGone) continue;
      if (!response.write(ready.length === 1 ? ready[0] : Buffer.concat(ready))) {
        await drainOrClose(response);
      }
    }
  } catch (error) {
    outcome.broken = true;
    outcome.failure = error;
  }

  const billable = outcome.started || !outcome.broken;
  if (billable) await hooks.settle(outcome);
  response.off('close', onClose);
  if (!billable || outcome.clientGone || response.destroyed) return outcome;
  begin();
  held.push(splitter.rest());
  if (outcome.broken) {
    // Mirror the upstream: a stream that broke must not look complete to the client.
    response.write(Buffer.concat(held));
    response.destroy();
  } else {
    response.end(Buffer.concat(held));
  }
  return outcome;
}

/** The bytes of whole events that may go to the client now; the rest joins `held`. */
function passable(events: Buffer[], meter: StreamMeter, held: Buffer[]): Buffer[] {
  const ready: Buffer[] = [];
  for (const event of events) {
    const action = meter.inspect(event);
    if (action.kind === 'drop') continue;
    const bytes = action.kind === 'replace' ? action.bytes : event;
    if (action.kind === 'hold' || held.length > 0) held.push(bytes);
    else ready.push(bytes);
  }
  return ready;
}

/** Waits for room in the client's socket buffer, or for the client to go away. */
function drainOrClose(response: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      response.off('drain', done);
      response.off('close', done);
      resolve();
    };
    response.on('drain', done);
    response.on('close', done);
  });
}
