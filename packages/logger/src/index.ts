/**
 * `@pilotlight/logger`: the platform logger. Every line is one JSON object on stdout (or a file
 * given by `PILOTLIGHT_LOG_FILE`), and lines written during an invocation carry its `request_id`,
 * `trace_id`, `span_id`, `trace_flags`, `function` and `instance` — correct across `await` and
 * under concurrent invocations. Lines are flushed before the process exits.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { invocationStorage } from './invocation.js';

let shared: (DestinationStream & { flushSync(): void }) | undefined;

/**
 * The one destination every logger of this process writes to, so lines keep their order. Async
 * writes keep logging off the request path; the exit hook keeps them from being lost.
 */
export function logDestination(): DestinationStream & { flushSync(): void } {
  if (shared) return shared;
  const file = process.env.PILOTLIGHT_LOG_FILE;
  const destination = pino.destination(file ? { dest: file, mkdir: true, sync: false } : { dest: 1, sync: false });
  process.once('exit', () => destination.flushSync());
  shared = destination;
  return destination;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Lowest level written; default `PILOTLIGHT_FUNCTION_LOG_LEVEL` or `info`. */
  readonly level?: string;
  /** Written as `name` on every line. */
  readonly name?: string;
  /**
   * Inject the active invocation's fields into every line (default). Off for loggers that carry
   * those fields as bindings already, such as the invocation context's own logger.
   */
  readonly injectInvocation?: boolean;
}

/**
 * Creates a logger writing to the shared destination. The package's `logger` is one of these;
 * call this for a logger with other options (a level, a name).
 */
export function createLogger(options: LoggerOptions = {}, destination?: DestinationStream): Logger {
  return pino(
    {
      level: options.level ?? process.env.PILOTLIGHT_FUNCTION_LOG_LEVEL ?? 'info',
      name: options.name,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin: options.injectInvocation === false ? undefined : () => invocationStorage.getStore()?.fields ?? {},
    },
    destination ?? logDestination(),
  );
}

/** The function's logger. */
export const logger: Logger = createLogger();

export type { Logger };
export { currentInvocation, invocationStorage, runInInvocation } from './invocation.js';
export type { InvocationFields, InvocationScope } from './invocation.js';
export { hints, setHintSink } from './hints.js';
export type { HintSink, ScaleHint } from './hints.js';
