import { collectDefaultMetrics, Counter, Gauge, Histogram, type Metric, Registry } from 'prom-client';

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

/** One (code, method) series of the request metrics. */
interface Series {
  readonly code: string;
  readonly method: string;
  count: number;
  sum: number;
  /** Observations per bucket (not cumulative); the last slot is +Inf. */
  readonly buckets: Float64Array;
}

/**
 * of-watchdog's request counter and histogram, counted in plain numbers on the request path and
 * handed to prom-client only at scrape time: prom-client hashes the label set on every
 * observation, a measurable share of a proxied request's CPU (docs/benchmarks.md).
 */
class RequestMetrics {
  /**
   * By method, then status: the method strings come from Node's parser, the same string each
   * time with its hash kept, and a status is a small integer, so a lookup hashes and allocates
   * nothing (a `${status} ${method}` key did both on every request).
   */
  readonly #series = new Map<string, Map<number, Series>>();

  observe(status: number, method: string, seconds: number): void {
    let byStatus = this.#series.get(method);
    if (byStatus === undefined) {
      byStatus = new Map();
      this.#series.set(method, byStatus);
    }
    let series = byStatus.get(status);
    if (series === undefined) {
      series = { code: String(status), method, count: 0, sum: 0, buckets: new Float64Array(REQUEST_BUCKETS.length + 1) };
      byStatus.set(status, series);
    }
    series.count += 1;
    series.sum += seconds;
    let bucket = 0;
    while (bucket < REQUEST_BUCKETS.length && seconds > (REQUEST_BUCKETS[bucket] as number)) bucket += 1;
    (series.buckets[bucket] as number) += 1;
  }

  /** Registers `http_requests_total` and `http_request_duration_seconds` with `registry`. */
  register(registry: Registry): void {
    const series = () => [...this.#series.values()].flatMap((byStatus) => [...byStatus.values()]);
    registry.registerMetric(
      exported('http_requests_total', 'total HTTP requests processed', 'counter', () =>
        series().map((s) => ({ labels: { code: s.code, method: s.method }, value: s.count })),
      ),
    );
    registry.registerMetric(
      exported('http_request_duration_seconds', 'Seconds spent serving HTTP requests.', 'histogram', () =>
        series().flatMap((s) => {
          const labels = { code: s.code, method: s.method };
          let cumulative = 0;
          const values: ExportedValue[] = REQUEST_BUCKETS.map((le, i) => {
            cumulative += s.buckets[i] as number;
            return { labels: { ...labels, le }, value: cumulative, metricName: 'http_request_duration_seconds_bucket' };
          });
          values.push({ labels: { ...labels, le: '+Inf' }, value: s.count, metricName: 'http_request_duration_seconds_bucket' });
          return [
            ...values,
            { labels, value: s.sum, metricName: 'http_request_duration_seconds_sum' },
            { labels, value: s.count, metricName: 'http_request_duration_seconds_count' },
          ];
        }),
      ),
    );
  }
}

interface ExportedValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** A metric whose values are computed at scrape time, in the shape prom-client's registry reads. */
function exported(name: string, help: string, type: 'counter' | 'histogram', values: () => ExportedValue[]): Metric {
  const metric = { name, help, type, aggregator: 'sum', get: async () => ({ name, help, type, aggregator: 'sum', values: values() }) };
  return metric as unknown as Metric;
}

/**
 * The watchdog's Prometheus metrics. Request metrics keep of-watchdog's names and labels
 * (`http_requests_total`, `http_request_duration_seconds`, `http_requests_in_flight`) so existing
 * OpenFaaS dashboards work; the rest are `pilotlight_*`.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly #requests = new RequestMetrics();
  readonly #queueWait: Histogram;
  readonly #specialize: Histogram;
  readonly #coldStart: Histogram;
  readonly #restarts: Counter;
  readonly #rejected: Counter<'code'>;

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    this.#requests.register(this.registry);
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
    this.#requests.observe(status, method, seconds);
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
