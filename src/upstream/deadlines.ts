/**
 * Aborts upstream calls that outlive the request timeout. One timer sweeps them all: an
 * `AbortSignal.timeout` per request costs a timer and a weak reference on every call, which
 * showed in profiles, while the timeout it enforces is minutes long.
 */
export class Deadlines {
  readonly #due = new Map<AbortController, number>();
  readonly #timer: NodeJS.Timeout;

  /** `sweepMs` is how late a deadline may fire; it bounds the timeout's precision. */
  constructor(sweepMs = 250) {
    this.#timer = setInterval(() => this.#sweep(), sweepMs);
    this.#timer.unref();
  }

  /** A signal that aborts `ms` from now, and `done` to call when the request is over. */
  start(ms: number): { signal: AbortSignal; done: () => void } {
    const controller = new AbortController();
    this.#due.set(controller, Date.now() + ms);
    return { signal: controller.signal, done: () => this.#due.delete(controller) };
  }

  close(): void {
    clearInterval(this.#timer);
  }

  #sweep(): void {
    const now = Date.now();
    for (const [controller, due] of this.#due) {
      if (due > now) continue;
      this.#due.delete(controller);
      controller.abort(new DOMException('The request timed out.', 'TimeoutError'));
    }
  }
}
