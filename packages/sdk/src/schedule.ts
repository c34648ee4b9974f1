import { Cron } from 'croner';

/** Options of {@link Schedule}. */
export interface ScheduleOptions {
  /** Stable name the trigger is routed by; default `ClassName.method`. */
  readonly name?: string;
  /** IANA time zone the expression is read in; default UTC. */
  readonly timezone?: string;
}

/** A scheduled method, as the runtime reports it to the watchdog. */
export interface ScheduleEntry {
  readonly name: string;
  readonly cron: string;
  readonly timezone: string;
  readonly target: Function;
  readonly method: string | symbol;
}

const KEY = Symbol.for('pilotlight.sdk.schedules');
type Holder = { [KEY]?: ScheduleEntry[] };

/** Every schedule registered by decorators in this process. */
export function registeredSchedules(): readonly ScheduleEntry[] {
  return ((globalThis as Holder)[KEY] ??= []);
}

/**
 * Method decorator: this method runs on a cron schedule. Pilotlight does not keep time itself;
 * the watchdog publishes the schedule (`GET /_/schedules`) so the platform's cron connector
 * (OpenFaaS cron-connector, a Knative PingSource, a Fission time trigger) is configured from it,
 * and routes the connector's call to this method. The expression is checked when the class is
 * defined: a bad one fails the load with its reason.
 *
 * @example
 * ```ts
 * @Schedule('0 *\/6 * * *', { name: 'cleanup' })
 * async cleanup(@Context() ctx: InvocationContext) { ... }
 * ```
 */
export function Schedule(cron: string, options: ScheduleOptions = {}): MethodDecorator {
  const timezone = options.timezone ?? 'UTC';
  try {
    new Cron(cron, { paused: true, timezone });
  } catch (error) {
    throw new TypeError(`@Schedule("${cron}") is not a valid cron expression: ${(error as Error).message}`);
  }
  return (prototype, method) => {
    const name = options.name ?? `${prototype.constructor.name}.${String(method)}`;
    ((globalThis as Holder)[KEY] ??= []).push({ name, cron, timezone, target: prototype.constructor, method });
  };
}
