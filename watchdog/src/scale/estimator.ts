/** What the estimator is told about the instance besides its traffic. */
export interface LoadState {
  readonly inflight: number;
  readonly queued: number;
  /** Every slot busy (or the function said it is saturated). */
  readonly saturated: boolean;
}

/** One estimate: the figures a scale hint carries. */
export interface Estimate {
  /** Requests per second arriving, over `windowSeconds`. */
  readonly arrivalRate: number;
  readonly windowSeconds: number;
  /** Mean execution time of recent requests; 0 until one has finished. */
  readonly meanExecSeconds: number;
  /** How long a new instance takes to become able to serve. */
  readonly startupSeconds: number;
  /** Concurrent requests one instance serves at its target. */
  readonly capacity: number;
  readonly inflight: number;
  readonly queued: number;
  /** Slots this instance's load needs, over its capacity; above 1 it cannot keep up. */
  readonly utilization: number;
  /** Instances this load needs at the target utilisation: what the platform should run for it. */
  readonly desiredInstances: number;
  readonly saturated: boolean;
}

/** How the estimator is set up. */
export interface EstimatorOptions {
  /** Concurrent requests per instance (max_inflight, or the scale concurrency when unlimited). */
  readonly capacity: number;
  /** Fraction of capacity to plan for, leaving headroom for bursts within a scrape. */
  readonly targetUtilization: number;
  /** Milliseconds, monotonic; injected so tests can drive time. */
  readonly now: () => number;
}

const BUCKET_MS = 100;
const BUCKETS = 600; // 60 s of history
const MIN_WINDOW_BUCKETS = 10; // 1 s
/** The window grows until it holds this many arrivals, so the rate has a stable basis. */
const ARRIVALS_FOR_CONFIDENCE = 20;
/** Weight of the newest execution time in the moving average. */
const EXEC_ALPHA = 0.2;

/**
 * Estimates the instances a function needs from what one instance sees (docs/scaling.md):
 * arrival rate over an adaptive window, mean execution time, queue length, in-flight requests
 * and instance start-up time. Recording is O(1) per request; the estimate is computed on demand.
 */
export class LoadEstimator {
  readonly #counts = new Uint32Array(BUCKETS);
  #bucket = -1;
  #meanExec = 0;
  #startup = 0;

  constructor(private readonly options: EstimatorOptions) {}

  #advance(now: number): number {
    const bucket = Math.floor(now / BUCKET_MS);
    if (this.#bucket === -1) this.#bucket = bucket;
    // Clear the buckets time has passed over since the last arrival.
    for (let b = this.#bucket + 1; b <= bucket && b <= this.#bucket + BUCKETS; b++) this.#counts[b % BUCKETS] = 0;
    if (bucket > this.#bucket) this.#bucket = bucket;
    return bucket;
  }

  /** A request arrived. */
  arrival(): void {
    const bucket = this.#advance(this.options.now());
    (this.#counts[bucket % BUCKETS] as number) += 1;
  }

  /** A request finished after `seconds` of execution. */
  completion(seconds: number): void {
    this.#meanExec = this.#meanExec === 0 ? seconds : this.#meanExec + EXEC_ALPHA * (seconds - this.#meanExec);
  }

  /** An instance became able to serve after `seconds` (cold start or specialization). */
  startup(seconds: number): void {
    this.#startup = seconds;
  }

  /**
   * The arrival rate over the shortest window (1 s to 60 s, back from now) holding enough
   * arrivals: busy functions get a short, responsive window; quiet ones a long, stable one.
   */
  #rate(now: number): { rate: number; window: number } {
    const current = this.#advance(now);
    let arrivals = 0;
    let buckets = 0;
    while (buckets < BUCKETS) {
      arrivals += this.#counts[(current - buckets + BUCKETS * 2) % BUCKETS] as number;
      buckets += 1;
      if (buckets >= MIN_WINDOW_BUCKETS && arrivals >= ARRIVALS_FOR_CONFIDENCE) break;
    }
    // The current bucket is only partly elapsed.
    const seconds = ((buckets - 1) * BUCKET_MS + (now % BUCKET_MS || BUCKET_MS)) / 1000;
    return { rate: arrivals / seconds, window: seconds };
  }

  /** The estimate for the instance's present state. */
  estimate(state: LoadState): Estimate {
    const { capacity, targetUtilization } = this.options;
    const { rate, window } = this.#rate(this.options.now());
    const exec = this.#meanExec;
    // Little's law: the slots steady traffic keeps busy.
    const steady = rate * exec;
    // The backlog has to be worked off by the time new capacity could arrive; what the busy slots
    // drain themselves within that time needs no new instance.
    const horizon = Math.max(this.#startup, exec, 0.1);
    const backlog = exec > 0 ? Math.max(0, state.queued * exec - state.inflight * horizon) / horizon : state.queued;
    const slots = Math.max(steady + backlog, state.inflight + (exec > 0 ? 0 : state.queued));
    const utilization = slots / capacity;
    return {
      arrivalRate: round(rate),
      windowSeconds: round(window),
      meanExecSeconds: round(exec),
      startupSeconds: round(this.#startup),
      capacity,
      inflight: state.inflight,
      queued: state.queued,
      utilization: round(utilization),
      desiredInstances: round(utilization / targetUtilization),
      saturated: state.saturated,
    };
  }
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
