import { pino, type Logger } from 'pino';

/**
 * The function's logger: one JSON object per line on stdout, which the watchdog turns into
 * records carrying the function and instance. Field names follow the watchdog's own lines.
 */
export const logger: Logger = pino({
  base: undefined,
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: (label) => ({ level: label }) },
});

export type { Logger };
