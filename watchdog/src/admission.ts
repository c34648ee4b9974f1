import { WatchdogError } from './errors.js';
import { List, type ListEntry } from './list.js';

/** The limits {@link Admission} enforces. */
export interface AdmissionLimits {
  /** Most requests served at once; 0 means no limit. */
  readonly maxInflight: number;
  /** Most requests waiting for a slot; 0 rejects at once when all slots are busy. */
  readonly maxQueue: number;
  /** Longest a request waits in the queue, in ms. */
  readonly queueTimeout: number;
}

interface Waiter {
  resolve(): void;
  reject(error: WatchdogError): void;
  timer: NodeJS.Timeout;
}

/** A place in the queue that the caller can give up (when its client disconnects). */
export interface Ticket {
  readonly admitted: Promise<void>;
  cancel(): void;
}

/**
 * Concurrency limit with a bounded FIFO queue. The common case, a free slot, is synchronous
 * ({@link Admission.tryEnter}) so unlimited or unsaturated instances pay no promise per request.
 */
export class Admission {
  #inflight = 0;
  /** A list, not a Set: see list.ts for what a Set per request costs the GC. */
  readonly #queue = new List<Waiter>();

  constructor(private readonly limits: AdmissionLimits) {}

  /** Requests holding a slot now. */
  get inflight(): number {
    return this.#inflight;
  }

  /** Requests waiting for a slot now. */
  get queued(): number {
    return this.#queue.size;
  }

  /** True when every slot is taken (never with no limit). */
  get saturated(): boolean {
    return this.limits.maxInflight > 0 && this.#inflight >= this.limits.maxInflight;
  }

  /** Takes a slot if one is free. */
  tryEnter(): boolean {
    if (this.saturated) return false;
    this.#inflight += 1;
    return true;
  }

  /**
   * Waits for a slot. Rejects at once with `PILOTLIGHT_OVERLOADED` when the queue is full, or with
   * `PILOTLIGHT_QUEUE_TIMEOUT` after the queue timeout.
   */
  enqueue(): Ticket {
    const retryAfter = { 'retry-after': String(Math.max(1, Math.ceil(this.limits.queueTimeout / 1000))) };
    if (this.#queue.size >= this.limits.maxQueue) {
      const overloaded = new WatchdogError(
        'PILOTLIGHT_OVERLOADED',
        `all ${this.limits.maxInflight} slots are busy and ${this.limits.maxQueue} requests are queued; retry later`,
        retryAfter,
      );
      return { admitted: Promise.reject(overloaded), cancel: () => {} };
    }
    let entry!: ListEntry<Waiter>;
    const admitted = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#queue.remove(entry);
        reject(
          new WatchdogError(
            'PILOTLIGHT_QUEUE_TIMEOUT',
            `no slot became free within the queue timeout of ${this.limits.queueTimeout} ms; retry later`,
            retryAfter,
          ),
        );
      }, this.limits.queueTimeout);
      entry = this.#queue.push({ resolve, reject, timer });
    });
    return {
      admitted,
      cancel: () => {
        if (this.#queue.remove(entry)) clearTimeout(entry.value.timer);
      },
    };
  }

  /** Gives a slot back, handing it straight to the longest-waiting request if there is one. */
  leave(): void {
    const next = this.#queue.shift();
    if (next === undefined) {
      this.#inflight -= 1;
      return;
    }
    clearTimeout(next.timer);
    next.resolve();
  }
}
