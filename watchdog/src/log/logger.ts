import { pino, type Logger, type DestinationStream } from 'pino';

/** What every watchdog log line carries. */
export interface LogIdentity {
  readonly level: string;
  readonly functionName: string | undefined;
  readonly instance: string;
}

/** A destination that can be flushed before the process exits, so no line is lost on SIGTERM. */
export interface FlushableDestination extends DestinationStream {
  flushSync(): void;
}

/**
 * Creates the watchdog's JSON logger. Lines are written asynchronously to fd 1 (stdout) so logging
 * never stalls a request; {@link FlushableDestination.flushSync} runs on the way out.
 */
export function createLogger(
  identity: LogIdentity,
  destination: FlushableDestination = pino.destination({ dest: 1, sync: false }),
): { logger: Logger; destination: FlushableDestination } {
  const logger = pino(
    {
      level: identity.level,
      base: { function: identity.functionName, instance: identity.instance },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  return { logger, destination };
}
