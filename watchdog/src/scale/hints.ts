import type { Logger } from 'pino';
import type { Admission } from '../admission.js';
import type { Config } from '../config/settings.js';
import type { Identity } from '../control/specialize.js';
import type { Lifecycle } from '../lifecycle.js';
import type { FunctionHint } from '../runners/runner.js';
import { LoadEstimator } from './estimator.js';
import { HintPublisher, type ScaleHint, type SendHint } from './publisher.js';

/** Plan for this fraction of capacity, so a burst between two hints still fits. */
const TARGET_UTILIZATION = 0.8;
/** How long a request that found no slot keeps the instance counted as saturated. */
const PRESSURE_MS = 1_000;
/** Concurrency assumed per instance when max_inflight is unlimited and nothing else is set. */
const DEFAULT_CONCURRENCY = 100;

/**
 * POSTs a hint as JSON with undici, bounded by `timeoutMs`. undici is imported on the first hint,
 * not at start: most instances never push one, and it is the largest module the watchdog uses.
 */
export const postHint: SendHint = async (url, hint, timeoutMs) => {
  const { request } = await import('undici');
  const { statusCode, body } = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(hint),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    signal: AbortSignal.timeout(timeoutMs),
  });
  await body.dump();
  if (statusCode >= 300) throw new Error(`the hint receiver answered ${statusCode}`);
};

/** What the scale hints are computed from. */
export interface ScaleHintDeps {
  readonly config: Config;
  readonly admission: Admission;
  readonly lifecycle: Lifecycle;
  readonly identity: Identity;
  readonly logger: Logger;
  readonly send: SendHint;
  readonly now: () => number;
}

/**
 * Active scale hints: the load estimate, the function's own hints merged in, served on
 * `GET /_/scale` and pushed to `scale_hint_url`.
 */
export class ScaleHints {
  readonly estimator: LoadEstimator;
  readonly #publisher: HintPublisher;
  #functionHint: FunctionHint | null = null;
  #pressureAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly deps: ScaleHintDeps) {
    const { config } = deps;
    const capacity = config.scaleConcurrency || config.maxInflight || DEFAULT_CONCURRENCY;
    this.estimator = new LoadEstimator({ capacity, targetUtilization: TARGET_UTILIZATION, now: deps.now });
    this.#publisher = new HintPublisher({
      url: config.scaleHintUrl,
      heartbeatMs: config.scaleHintInterval,
      minIntervalMs: config.scaleHintMinInterval,
      current: (reason) => this.current(reason),
      send: deps.send,
      now: deps.now,
      logger: deps.logger,
    });
  }

  /** The hint for now. */
  current(reason: string): ScaleHint {
    const { admission, lifecycle, identity, config } = this.deps;
    // Saturated means demand exceeded the slots: a request is waiting, or one found no slot in
    // the last second (a queue of 0 refuses at once). Every slot busy alone is not: an instance
    // with one slot is fully busy on every request.
    const saturated =
      admission.queued > 0 || this.deps.now() - this.#pressureAt < PRESSURE_MS || this.#functionHint?.saturated === true;
    return {
      function: identity.functionName ?? null,
      instance: config.instance,
      state: lifecycle.state,
      time: new Date().toISOString(),
      reason,
      ...this.estimator.estimate({ inflight: admission.inflight, queued: admission.queued, saturated }),
      functionHint: this.#functionHint,
    };
  }

  /** The function's code said something; saturation is pushed at once. */
  fromFunction(hint: FunctionHint): void {
    // A hint may say one thing (only `load`); what it leaves out stays as last said.
    const said = Object.fromEntries(Object.entries(hint).filter(([, value]) => value !== undefined));
    this.#functionHint = { ...this.#functionHint, ...said };
    this.#publisher.nudge();
  }

  /** A request found every slot busy. */
  nudge(): void {
    this.#pressureAt = this.deps.now();
    this.#publisher.nudge();
  }

  start(): void {
    this.#publisher.start();
  }

  stop(): void {
    this.#publisher.stop();
  }
}
