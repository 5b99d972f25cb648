import { Client } from 'undici';

/** A target for the time-to-first-byte loop: where to POST and with which headers and body. */
export interface TtfbTarget {
  url: string;
  headers: Record<string, string>;
  body: string;
}

const WARM_UP_REQUESTS = 20;

/**
 * Time to first body byte, in ms, of `count` requests sent one after another on one keep-alive
 * connection. Load tools report the time to the *last* byte, which hides what a streaming client
 * feels; this loop stops the clock when the first chunk of the body arrives, then reads the rest
 * so that the next request reuses the connection.
 */
export async function measureTtfb(target: TtfbTarget, count: number): Promise<number[]> {
  const url = new URL(target.url);
  const client = new Client(url.origin, { pipelining: 1, keepAliveTimeout: 30_000 });
  const samples: number[] = [];

  try {
    // Untimed: opens the connection and warms this loop's code, which would otherwise weigh on
    // whichever target happens to be measured first.
    for (let i = 0; i < WARM_UP_REQUESTS; i += 1) await firstByteMs(client, url.pathname, target);

    for (let i = 0; i < count; i += 1) {
      samples.push(await firstByteMs(client, url.pathname, target));
    }
  } finally {
    await client.close();
  }
  return samples;
}

async function firstByteMs(client: Client, path: string, target: TtfbTarget): Promise<number> {
  const started = performance.now();
  const response = await client.request({
    method: 'POST',
    path,
    headers: { 'content-type': 'application/json', ...target.headers },
    body: target.body,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });

  let firstByte: number | undefined;
  for await (const _chunk of response.body) {
    firstByte ??= performance.now();
  }

  if (response.statusCode !== 200) throw new Error(`TTFB request got ${response.statusCode}`);
  return (firstByte ?? performance.now()) - started;
}
