import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Seconds buckets of of-watchdog's request histogram (Prometheus' defaults), kept for dashboards. */
const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Start-up and specialization take milliseconds to seconds. */
const STARTUP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Live figures the metrics read at scrape time. */
export interface MetricSources {
  inflight(): number;
  queued(): number;
  /** The instances this function needs, as last computed for scale hints. */
  desiredInstances(): number;
}

type Labelled<T> = { get(code: string, method: string): T };

function cached<T>(make: (code: string, method: string) => T): Labelled<T> {
  const children = new Map<string, T>();
  return {
    get(code, method) {
      const key = `${code} ${method}`;
      let child = children.get(key);
      if (child === undefined) {
        child = make(code, method);
        children.set(key, child);
      }
      return child;
    },
  };
}

/**
 * The watchdog's Prometheus metrics. Request metrics keep of-watchdog's names and labels
 * (`http_requests_total`, `http_request_duration_seconds`, `http_requests_in_flight`) so existing
 * OpenFaaS dashboards work; the rest are `pilotlight_*`.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly #requests: Labelled<Counter.Internal>;
  readonly #durations: Labelled<Histogram.Internal<string>>;
  readonly #queueWait: Histogram;
  readonly #specialize: Histogram;
  readonly #coldStart: Histogram;
  readonly #restarts: Counter;
  readonly #rejected: Counter<'code'>;

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    const requests = new Counter({ name: 'http_requests_total', help: 'total HTTP requests processed', labelNames: ['code', 'method'], registers });
    const durations = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'Seconds spent serving HTTP requests.',
      labelNames: ['code', 'method'],
      buckets: REQUEST_BUCKETS,
      registers,
    });
    // Label children are looked up once per (code, method), not on every request.
    this.#requests = cached((code, method) => requests.labels(code, method));
    this.#durations = cached((code, method) => durations.labels(code, method));
    new Gauge({ name: 'http_requests_in_flight', help: 'total HTTP requests in-flight', registers, collect() { this.set(sources.inflight()); } });
    new Gauge({ name: 'pilotlight_queue_depth', help: 'Requests waiting for a max_inflight slot.', registers, collect() { this.set(sources.queued()); } });
    new Gauge({
      name: 'pilotlight_scale_hint_instances',
      help: 'Instances this function needs for the load this instance sees (the scale hint).',
      registers,
      collect() {
        this.set(sources.desiredInstances());
      },
    });
    this.#queueWait = new Histogram({ name: 'pilotlight_queue_wait_seconds', help: 'Seconds queued requests waited for a slot.', buckets: REQUEST_BUCKETS, registers });
    this.#specialize = new Histogram({ name: 'pilotlight_specialize_duration_seconds', help: 'Seconds from POST /_/specialize to ready.', buckets: STARTUP_BUCKETS, registers });
    this.#coldStart = new Histogram({
      name: 'pilotlight_cold_start_seconds',
      help: "Seconds from starting the function's process (or runtime) until it could serve (or, for a runtime, until generic).",
      buckets: STARTUP_BUCKETS,
      registers,
    });
    this.#restarts = new Counter({ name: 'pilotlight_runtime_restarts_total', help: "Restarts of the function's process or runtime.", registers });
    this.#rejected = new Counter({ name: 'pilotlight_rejected_total', help: 'Requests the watchdog answered itself, by error code.', labelNames: ['code'], registers });
    collectDefaultMetrics({ register: this.registry });
  }

  /** A finished request. */
  request(status: number, method: string, seconds: number): void {
    const code = String(status);
    this.#requests.get(code, method).inc();
    this.#durations.get(code, method).observe(seconds);
  }

  /** A request that waited in the queue and then got a slot (or gave up). */
  queueWait(seconds: number): void {
    this.#queueWait.observe(seconds);
  }

  /** A specialization that succeeded. */
  specialized(seconds: number): void {
    this.#specialize.observe(seconds);
  }

  /** A process or runtime start that reached serving (or generic). */
  coldStart(seconds: number): void {
    this.#coldStart.observe(seconds);
  }

  /** The function's process or runtime was restarted. */
  restarted(): void {
    this.#restarts.inc();
  }

  /** The watchdog answered an error itself. */
  rejected(code: string): void {
    this.#rejected.labels(code).inc();
  }

  /** The exposition text for a scrape. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
