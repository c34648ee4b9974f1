/**
 * `@pilotlight/logger`: the platform logger. Every line is one JSON object on stdout (or a file
 * given by `PILOTLIGHT_LOG_FILE`), and lines written during an invocation carry its `request_id`,
 * `trace_id`, `span_id`, `trace_flags`, `function` and `instance` — correct across `await` and
 * under concurrent invocations. Lines are flushed before the process exits.
 */
import { mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino, type DestinationStream, type Logger } from 'pino';
import { invocationStorage } from './invocation.js';

type Target = ReturnType<typeof pino.destination>;

/** stdout, or `file` (appended to, its directory made) opened now, so a bad path throws here. */
function openTarget(file: string | undefined): Target {
  if (!file) return pino.destination({ dest: 1, sync: false });
  mkdirSync(dirname(file), { recursive: true });
  return pino.destination({ dest: openSync(file, 'a'), sync: false });
}

/**
 * Where every logger of this process writes, so lines keep their order. Async writes keep
 * logging off the request path; the exit hook keeps them from being lost. Loggers hold this, not
 * the file, so {@link redirectLog} can move them all at once.
 */
class SharedDestination implements DestinationStream {
  #target: Target;
  #file: string | undefined;

  constructor(file: string | undefined) {
    this.#target = openTarget(file);
    this.#file = file || undefined;
  }

  write(line: string): void {
    this.#target.write(line);
  }

  flushSync(): void {
    this.#target.flushSync();
  }

  redirect(file: string | undefined): void {
    if ((file || undefined) === this.#file) return;
    const next = openTarget(file);
    const previous = this.#target;
    previous.flushSync();
    // stdout stays open for whatever else writes to it; a file of ours is closed.
    if (this.#file !== undefined) previous.end();
    this.#target = next;
    this.#file = file || undefined;
  }
}

let shared: SharedDestination | undefined;

/** The one destination every logger of this process writes to (see `PILOTLIGHT_LOG_FILE`). */
export function logDestination(): DestinationStream & { flushSync(): void } {
  if (shared) return shared;
  const destination = new SharedDestination(process.env.PILOTLIGHT_LOG_FILE);
  process.once('exit', () => destination.flushSync());
  shared = destination;
  return destination;
}

/**
 * Sends the lines of every logger of this process to `file` from now on, or to stdout when it is
 * empty or undefined; lines already written stay where they went. For a destination named after
 * the process started, such as `PILOTLIGHT_LOG_FILE` in a runtime's specialization env. Throws
 * when `file` cannot be opened for appending, leaving the destination as it was.
 */
export function redirectLog(file: string | undefined): void {
  (logDestination() as SharedDestination).redirect(file);
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
