import { EventEmitter } from 'node:events';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GatewayError, isStoreFailure } from '../errors.js';
import type { Logger } from '../log.js';
import type { GatewayMetrics } from '../metrics/metrics.js';
import type { Scripts } from '../store/scripts.js';
import { type Charge, type Settlement, settle } from './settle.js';

type Attempt =
  | { kind: 'settled'; settlement: Settlement }
  | { kind: 'rejected' }
  | { kind: 'failed'; message: string };

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

/**
 * Settles charges, and keeps those that Redis could not take until they land.
 *
 * The upstream has already served a request by the time it is settled, so a charge that fails
 * to reach Redis is never dropped: it is written to a journal file (one per request id, so that
 * a gateway restart replays it) and retried with backoff until Redis answers. Retrying is safe
 * because `settle` is idempotent by request id.
 *
 * Emits `settled` (charge, settlement) for every charge that reached Redis, `deferred` (charge)
 * when a charge is kept for later, `landed` (charge) once a kept charge reached Redis, and
 * `drained` when no kept charge is left.
 */
export class Settler extends EventEmitter {
  readonly #scripts: Scripts;
  readonly #journalDir: string;
  readonly #logger: Logger;
  readonly #metrics: GatewayMetrics;
  readonly #pending = new Map<string, Charge>();
  #timer: NodeJS.Timeout | undefined;
  #delayMs = RETRY_MIN_MS;
  #closed = false;

  constructor(scripts: Scripts, journalDir: string, logger: Logger, metrics: GatewayMetrics) {
    super();
    this.#scripts = scripts;
    this.#journalDir = journalDir;
    this.#logger = logger;
    this.#metrics = metrics;
    mkdirSync(journalDir, { recursive: true });
  }

  /** Charges left in the journal by an earlier run are queued for another attempt. */
  replayJournal(): number {
    for (const file of readdirSync(this.#journalDir)) {
      if (!file.endsWith('.json') || file.endsWith('.rejected.json')) continue;
      const charge = JSON.parse(readFileSync(join(this.#journalDir, file), 'utf8')) as Charge;
      this.#pending.set(charge.requestId, charge);
    }
    this.#metrics.settlementsPending.set(this.#pending.size);
    if (this.#pending.size > 0) this.#schedule(0);
    return this.#pending.size;
  }

  /**
   * Settles now if Redis answers; otherwise journals the charge and returns `undefined`, and the
   * charge lands as soon as Redis is back.
   */
  async settle(charge: Charge): Promise<Settlement | undefined> {
    const outcome = await this.#attempt(charge);
    if (outcome.kind === 'failed') {
      this.#logger.warn(
        { requestId: charge.requestId, err: outcome.message },
        'settlement deferred: redis unreachable',
      );
      this.#keep(charge);
    }
    return outcome.kind === 'settled' ? outcome.settlement : undefined;
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #write(charge: Charge, suffix: string): void {
    const file = join(this.#journalDir, `${charge.requestId}.${suffix}`);
    writeFileSync(`${file}.tmp`, JSON.stringify(charge));
    renameSync(`${file}.tmp`, file);
  }

  #keep(charge: Charge): void {
    this.#write(charge, 'json');
    this.#pending.set(charge.requestId, charge);
    this.#metrics.settlementsPending.set(this.#pending.size);
    this.emit('deferred', charge);
    this.#schedule(this.#delayMs);
  }

  #schedule(delayMs: number): void {
    if (this.#closed || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#retryAll();
    }, delayMs);
  }

  async #retryAll(): Promise<void> {
    for (const charge of [...this.#pending.values()]) {
      this.#metrics.settlementRetries.inc();
      const outcome = await this.#attempt(charge);
      if (outcome.kind === 'failed') {
        this.#delayMs = Math.min(this.#delayMs * 2, RETRY_MAX_MS);
        this.#logger.debug({ err: outcome.message }, 'settlement retry failed');
        this.#schedule(this.#delayMs);
        return;
      }
      this.#unkeep(charge, outcome.kind === 'settled');
    }
    this.#delayMs = RETRY_MIN_MS;
  }

  /**
   * One try at settling. A store failure is worth retrying; any other refusal (a charge too old
   * to settle exactly once, or counts the script cannot bill exactly) never will be, so that
   * charge is set aside on disk for the operator instead.
   */
  async #attempt(charge: Charge): Promise<Attempt> {
    try {
      const settlement = await settle(this.#scripts, charge);
      this.emit('settled', charge, settlement);
      return { kind: 'settled', settlement };
    } catch (error) {
      this.#metrics.settlementFailures.inc();
      if (error instanceof GatewayError && !isStoreFailure(error)) {
        this.#write(charge, 'rejected.json');
        this.#logger.error({ requestId: charge.requestId, err: error.message }, 'charge refused');
        return { kind: 'rejected' };
      }
      return { kind: 'failed', message: (error as Error).message };
    }
  }

  /** Takes a kept charge out of the journal once it landed, or was set aside as rejected. */
  #unkeep(charge: Charge, landed: boolean): void {
    rmSync(join(this.#journalDir, `${charge.requestId}.json`), { force: true });
    this.#pending.delete(charge.requestId);
    this.#metrics.settlementsPending.set(this.#pending.size);
    if (landed) {
      this.#logger.info({ requestId: charge.requestId }, 'deferred settlement landed');
      this.emit('landed', charge);
    }
    if (this.#pending.size === 0) this.emit('drained');
  }
}
