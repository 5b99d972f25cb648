import { WebSocket } from 'undici';

/** `process.memoryUsage()` of the inspected process, in MB. */
export interface MemoryReading {
  rssMb: number;
  heapUsedMb: number;
  externalMb: number;
}

interface Reply {
  id?: number;
  result?: { result?: { value?: unknown } };
  error?: { message: string };
}

const CALL_TIMEOUT_MS = 10_000;

/**
 * A DevTools protocol session with a node process started with `--inspect=127.0.0.1:PORT`.
 * The soak uses it to force a full garbage collection before it reads memory, so that garbage
 * not yet collected is not mistaken for a leak, without the gateway having to expose `gc`.
 */
export class InspectorSession {
  private nextId = 1;
  private readonly waiting = new Map<number, (reply: Reply) => void>();

  private constructor(private readonly socket: WebSocket) {
    socket.addEventListener('message', (event) => {
      const reply = JSON.parse(String(event.data)) as Reply;
      if (reply.id !== undefined) this.waiting.get(reply.id)?.(reply);
    });
  }

  static async open(port: number): Promise<InspectorSession> {
    const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as {
      webSocketDebuggerUrl: string;
    }[];
    const url = targets[0]?.webSocketDebuggerUrl;
    if (url === undefined) throw new Error('the inspector lists no target');

    const socket = new WebSocket(url);
    await new Promise<void>((done, fail) => {
      socket.addEventListener('open', () => done());
      socket.addEventListener('error', () => fail(new Error(`cannot open ${url}`)));
    });
    return new InspectorSession(socket);
  }

  /** Two full collections: the first may only queue finalizers that free more. */
  async collectGarbage(): Promise<void> {
    await this.call('HeapProfiler.collectGarbage');
    await this.call('HeapProfiler.collectGarbage');
  }

  async memory(): Promise<MemoryReading> {
    const reply = await this.call('Runtime.evaluate', {
      expression: 'JSON.stringify(process.memoryUsage())',
      returnByValue: true,
    });
    const usage = JSON.parse(String(reply.result?.result?.value)) as Record<string, number>;
    const mb = (bytes: number | undefined): number => (bytes ?? Number.NaN) / 1024 / 1024;
    return { rssMb: mb(usage.rss), heapUsedMb: mb(usage.heapUsed), externalMb: mb(usage.external) };
  }

  close(): void {
    this.socket.close();
  }

  private call(method: string, params: object = {}): Promise<Reply> {
    const id = this.nextId;
    this.nextId += 1;

    return new Promise((done, fail) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        fail(new Error(`${method}: no answer from the inspector`));
      }, CALL_TIMEOUT_MS);
      this.waiting.set(id, (reply) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        if (reply.error) fail(new Error(`${method}: ${reply.error.message}`));
        else done(reply);
      });
      this.socket.send(JSON.stringify({ id, method, params }));
    });
  }
}
