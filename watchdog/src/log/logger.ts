import { pino, type Logger, type DestinationStream } from 'pino';

/** What every watchdog log line carries. */
export interface LogIdentity {
  readonly level: string;
  /** The function's name as of each line: specialization can give a generic instance one. */
  readonly functionName: () => string | undefined;
  readonly instance: string;
}

/** The field every line carries once the function has a name (the logger's mixin writes it). */
const FUNCTION_KEY = 'function';
const NO_FIELDS = Object.freeze({});

/** A destination that can be flushed before the process exits, so no line is lost on SIGTERM. */
export interface FlushableDestination extends DestinationStream {
  flushSync(): void;
  /** Writes out what is buffered, including a write in flight, then emits `close`. */
  end(): void;
  once(event: 'close', listener: () => void): unknown;
}

/** Longest wait for the log to be written out on the way out. */
const DRAIN_LOG_MS = 2_000;

/**
 * Resolves once every line logged so far is written; call it last, just before exiting. Not
 * `flushSync()`: with an asynchronous write still in flight it writes the rest first and returns,
 * so the lines of that write come out of order or, when the process exits first, never.
 */
export function drainLog(destination: FlushableDestination): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, DRAIN_LOG_MS);
    destination.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    destination.end();
  });
}

/**
 * Creates the watchdog's JSON logger. Lines are written asynchronously to fd 1 (stdout) so logging
 * never stalls a request; {@link drainLog} runs on the way out.
 */
export function createLogger(
  identity: LogIdentity,
  destination: FlushableDestination = pino.destination({ dest: 1, sync: false }),
): { logger: Logger; destination: FlushableDestination } {
  const logger = pino(
    {
      level: identity.level,
      base: { instance: identity.instance },
      // Read per line rather than bound once, so child loggers made before specialization (a
      // runtime's output) name the function too. The mixin's field wins over a logged one, so a
      // line cannot relabel itself as another function.
      mixin: () => {
        const name = identity.functionName();
        return name === undefined ? NO_FIELDS : { [FUNCTION_KEY]: name };
      },
      mixinMergeStrategy: (logged: object, mixed: object) => (mixed === NO_FIELDS ? logged : { ...logged, ...mixed }),
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  return { logger, destination };
}
