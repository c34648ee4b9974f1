import type { Logger } from 'pino';
import type { Estimate } from './estimator.js';

/** The JSON of a scale hint, pushed to the hint URL and served at `GET /_/scale`. */
export interface ScaleHint extends Estimate {
  readonly function: string | null;
  readonly instance: string;
  readonly state: string;
  /** Wall-clock time of the estimate, ISO 8601. */
  readonly time: string;
  /** Why this hint was pushed: `saturated`, `changed`, `heartbeat`, or `pull`. */
  readonly reason: string;
  /** What the function's own code last said through the logger's `hints`. */
  readonly functionHint: { readonly saturated?: boolean; readonly load?: number; readonly metric?: string } | null;
}

/** Sends one hint; resolves when delivered, rejects on failure. Injected so tests drive it. */
export type SendHint = (url: string, hint: ScaleHint, timeoutMs: number) => Promise<void>;

/** How hints are pushed. */
export interface PublisherOptions {
  /** Where to POST hints; undefined: hints are only served at `/_/scale`. */
  readonly url: string | undefined;
  /** The longest time between two pushes (a heartbeat, so the receiver knows the instance lives). */
  readonly heartbeatMs: number;
  /** The shortest time between two pushes for a change; saturation does not wait for it. */
  readonly minIntervalMs: number;
  readonly current: (reason: string) => ScaleHint;
  readonly send: SendHint;
  readonly now: () => number;
  readonly logger: Logger;
}

const TICK_MS = 250;
const TIMEOUT_MS = 1_000;
const RETRY_DELAYS_MS = [100, 400];

/** Is the new figure far enough from the last pushed one to be worth telling? */
function materiallyChanged(last: number, next: number): boolean {
  return Math.abs(next - last) >= Math.max(0.5, 0.2 * last);
}

/**
 * Pushes scale hints: at once when the instance saturates, when the wanted instance count changes
 * materially (at most once per `minIntervalMs`), and as a heartbeat otherwise. Runs on its own
 * timer and never on a request's path: a request only nudges it, and a slow or dead receiver
 * costs requests nothing (bounded timeout, two retries, one push in flight at a time).
 */
export class HintPublisher {
  #timer: NodeJS.Timeout | undefined;
  #lastPushAt = Number.NEGATIVE_INFINITY;
  #lastPushed: ScaleHint | undefined;
  #sending = false;
  #pending: ScaleHint | undefined;
  #nudged = false;
  #failures = 0;

  constructor(private readonly options: PublisherOptions) {}

  /** Starts the evaluation timer (only with a URL). */
  start(): void {
    if (this.options.url === undefined) return;
    this.#timer = setInterval(() => this.#evaluate(), TICK_MS).unref();
    this.#evaluate();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Something may have saturated the instance: evaluate soon, off the caller's path. */
  nudge(): void {
    if (this.options.url === undefined || this.#nudged) return;
    this.#nudged = true;
    setImmediate(() => {
      this.#nudged = false;
      this.#evaluate();
    });
  }

  #evaluate(): void {
    const now = this.options.now();
    const hint = this.options.current('changed');
    const last = this.#lastPushed;
    let reason: string | undefined;
    if (hint.saturated && !last?.saturated) reason = 'saturated';
    else if (last && now - this.#lastPushAt >= this.options.minIntervalMs && (materiallyChanged(last.desiredInstances, hint.desiredInstances) || hint.saturated !== last.saturated)) {
      reason = 'changed';
    } else if (!last || now - this.#lastPushAt >= this.options.heartbeatMs) reason = 'heartbeat';
    if (reason === undefined) return;
    this.#lastPushAt = now;
    this.#lastPushed = hint;
    this.#push({ ...hint, reason });
  }

  #push(hint: ScaleHint): void {
    if (this.#sending) {
      // Only the newest hint matters; one push is in flight at a time.
      this.#pending = hint;
      return;
    }
    this.#sending = true;
    void this.#deliver(hint).finally(() => {
      this.#sending = false;
      const next = this.#pending;
      this.#pending = undefined;
      if (next) this.#push(next);
    });
  }

  async #deliver(hint: ScaleHint): Promise<void> {
    const url = this.options.url as string;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.options.send(url, hint, TIMEOUT_MS);
        if (this.#failures > 0) this.options.logger.info({ url }, 'scale hint receiver reachable again');
        this.#failures = 0;
        return;
      } catch (error) {
        const delay = RETRY_DELAYS_MS[attempt];
        if (delay === undefined) {
          // Logged once per outage, not once per hint.
          if (this.#failures++ === 0) {
            this.options.logger.warn({ url, err: error, code: 'PILOTLIGHT_HINT_UNDELIVERED' }, 'could not deliver a scale hint');
          }
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
      }
    }
  }
}
