import type { IncomingHttpHeaders } from 'node:http';

/**
 * Connection-specific fields, which a proxy must not forward (RFC 9110 §7.6.1), plus
 * `proxy-connection`, a non-standard one some clients still send.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Request fields the gateway replaces rather than forwards: the client's credentials (the
 * operator's key goes upstream instead), `host` (the upstream's own), `content-length` (the body
 * may be rewritten; RFC 9110 §8.6 has the sender compute it) and `accept-encoding` (the gateway
 * must read the response to meter it, so it asks for identity coding).
 */
const REPLACED_ON_REQUEST = new Set([
  'authorization',
  'x-api-key',
  'host',
  'content-length',
  'accept-encoding',
  'cookie',
]);

/**
 * Response fields the gateway sets itself: `content-length`, because a metered stream may lose
 * the usage chunk the gateway asked for, and the upstream's request id, kept under its own name.
 */
const REPLACED_ON_RESPONSE = new Set(['content-length', 'x-request-id', 'set-cookie']);

/** Fields named in `Connection` are hop-by-hop too (RFC 9110 §7.6.1). */
function connectionOptions(connection: string | string[] | undefined): Set<string> {
  const value = Array.isArray(connection) ? connection.join(',') : (connection ?? '');
  return new Set(
    value
      .split(',')
      .map((name) => name.trim().toLowerCase())
      .filter(Boolean),
  );
}

function copyFields(
  source: IncomingHttpHeaders | Record<string, string | string[] | undefined>,
  dropped: Set<string>,
): Record<string, string | string[]> {
  const named = connectionOptions(source.connection);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(source)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || dropped.has(lower) || named.has(lower)) continue;
    out[lower] = value;
  }
  return out;
}

/** The client's request fields that go upstream, before the gateway adds its own. */
export function upstreamRequestHeaders(client: IncomingHttpHeaders) {
  return copyFields(client, REPLACED_ON_REQUEST);
}

/**
 * The upstream's response fields that go to the client, with the gateway's request id, and the
 * length of the body when the gateway sends it whole.
 */
export function clientResponseHeaders(
  upstream: Record<string, string | string[] | undefined>,
  requestId: string,
  bodyLength?: number,
) {
  const headers = copyFields(upstream, REPLACED_ON_RESPONSE);
  headers['x-request-id'] = requestId;
  if (bodyLength !== undefined) headers['content-length'] = String(bodyLength);
  return headers;
}
