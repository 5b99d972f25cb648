/**
 * Splits a byte stream of Server-Sent Events into whole events without decoding what it only
 * forwards. Events end at a blank line (WHATWG HTML, "Server-sent events": LF, CRLF or CR line
 * ends); each event is returned as the exact bytes the upstream sent, blank line included, so
 * that forwarding it changes nothing.
 */
export class SseSplitter {
  #pending: Buffer = Buffer.alloc(0);

  /** Feeds a chunk and returns the events it completes, in order. */
  push(chunk: Buffer): Buffer[] {
    let buffer = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const events: Buffer[] = [];
    for (let end = eventEnd(buffer); end > 0; end = eventEnd(buffer)) {
      events.push(buffer.subarray(0, end));
      buffer = buffer.subarray(end);
    }
    this.#pending = buffer;
    return events;
  }

  /** Bytes of an event the stream ended in the middle of. */
  rest(): Buffer {
    return this.#pending;
  }
}

/** Index just past the first blank line, or -1. */
function eventEnd(buffer: Buffer): number {
  const lf = buffer.indexOf('\n\n');
  const crlf = buffer.indexOf('\r\n\r\n');
  if (crlf !== -1 && (lf === -1 || crlf < lf)) return crlf + 4;
  return lf === -1 ? -1 : lf + 2;
}

export interface SseEvent {
  /** The `event:` field, or `message` when absent. */
  type: string;
  /** The `data:` lines joined with LF. */
  data: string;
}

const DATA_PREFIX = Buffer.from('data: ');

/** Reads the fields of one event; comment lines and unknown fields are skipped. */
export function parseSseEvent(raw: Buffer): SseEvent {
  // Most events are one `data: …` line and its blank line: read that one without splitting.
  const firstLineEnd = raw.indexOf(0x0a);
  if (
    firstLineEnd === raw.length - 2 &&
    raw[0] === 0x64 &&
    raw.subarray(0, 6).equals(DATA_PREFIX)
  ) {
    const end = raw[firstLineEnd - 1] === 0x0d ? firstLineEnd - 1 : firstLineEnd;
    return { type: 'message', data: raw.toString('utf8', 6, end) };
  }

  let type = 'message';
  const data: string[] = [];
  for (const line of raw.toString('utf8').split(/\r\n|\r|\n/)) {
    if (line.startsWith('data:')) data.push(stripFieldSpace(line.slice(5)));
    else if (line.startsWith('event:')) type = stripFieldSpace(line.slice(6));
  }
  return { type, data: data.join('\n') };
}

function stripFieldSpace(value: string): string {
  return value.startsWith(' ') ? value.slice(1) : value;
}
