import type { Readable } from 'node:stream';
import { type Logger, pino } from 'pino';

/** Where a child's output line came from. */
export type StreamName = 'stdout' | 'stderr';

/** How one child output stream is turned into log records. */
export interface ChildOutputOptions {
  /** Logger whose bindings (function, instance, request and trace ids) every record carries. */
  readonly logger: Logger;
  readonly stream: StreamName;
  /** Longest line kept whole; a longer line is logged in parts of this length. */
  readonly maxLine: number;
  /** false: write the child's lines verbatim instead of wrapping them. */
  readonly wrap: boolean;
  /** Raw writer for `wrap: false`, the same destination the logger writes to, so order is kept. */
  readonly writeRaw: (text: string) => void;
  /**
   * Receives scale hints a process writes as JSON lines with `"pilotlight":"hint"` (what the
   * platform logger does outside a runtime); such lines are not logged.
   */
  readonly onHint?: (hint: Record<string, unknown>) => void;
}

const PINO_LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const LEVEL_NAMES = new Set(Object.values(PINO_LEVELS));

function levelOf(value: unknown, fallback: string): string {
  if (typeof value === 'number') return PINO_LEVELS[value] ?? fallback;
  if (typeof value === 'string' && LEVEL_NAMES.has(value.toLowerCase())) return value.toLowerCase();
  return fallback;
}

/** Parses a line that is a JSON object; anything else is plain text. */
function asObject(line: string): Record<string, unknown> | undefined {
  if (line.charCodeAt(0) !== 123 /* { */) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The keys the logger writes itself from its bindings (function, instance, request id, pid…).
 * pino writes bindings and the logged object side by side without merging them, so a child line
 * with the same key would give the record that key twice, and the child's value would win for
 * most JSON readers: a function could relabel its lines as another request or instance.
 */
function boundKeys(logger: Logger): ReadonlySet<string> {
  // The serialized bindings, not `bindings()`, which leaves out `pid` even where it is bound.
  const chindings = (logger as unknown as Record<symbol, unknown>)[pino.symbols.chindingsSym];
  if (typeof chindings !== 'string' || chindings.length < 2) return new Set(Object.keys(logger.bindings()));
  return new Set(Object.keys(JSON.parse(`{${chindings.slice(1)}}`) as object));
}

/** Writes one record at `level` the way every pino level method does, minus fatal's flush. */
function writeRecord(logger: Logger, fields: object, msg: string, level: number): void {
  const write = (logger as unknown as Record<symbol, (fields: object, msg: string, level: number) => void>)[pino.symbols.writeSym];
  write?.call(logger, fields, msg, level);
}

function record(options: ChildOutputOptions, line: string, part: number | undefined, last: boolean, bound: ReadonlySet<string>): void {
  if (!options.wrap) {
    options.writeRaw(`${line}\n`);
    return;
  }
  const fallback = options.stream === 'stderr' ? 'warn' : 'info';
  const parsed = part === undefined ? asObject(line) : undefined;
  if (parsed?.pilotlight === 'hint' && options.onHint) {
    options.onHint(parsed);
    return;
  }
  if (parsed) {
    // The child already logs JSON: keep its fields, let ours (stream, ids) sit beside them, and
    // move the fields pino writes itself so no key appears twice.
    const { level, time, msg, ...fields } = parsed;
    for (const key of bound) delete fields[key];
    const method = levelOf(level, fallback) as 'info';
    const logged = { ...fields, stream: options.stream, child_time: time };
    const text = typeof msg === 'string' ? msg : '';
    if ((method as string) !== 'fatal') options.logger[method](logged, text);
    // pino's fatal() flushes synchronously, which with a write in flight puts lines out of order:
    // the watchdog's own last words need that, a child's fatal line does not.
    else if (options.logger.isLevelEnabled('fatal')) writeRecord(options.logger, logged, text, 60);
    return;
  }
  const partInfo = part === undefined ? {} : { part, partial: !last };
  options.logger[fallback as 'info']({ stream: options.stream, ...partInfo }, line);
}

/** Where to cut `data` at most `max` bytes from `from` without splitting a UTF-8 character. */
function cutAt(data: Buffer, from: number, max: number): number {
  let cut = from + max;
  // Back off continuation bytes (10xxxxxx) so the character they belong to stays in the next part.
  while (cut > from && ((data[cut] as number) & 0xc0) === 0x80) cut -= 1;
  return cut === from ? from + max : cut;
}

/**
 * Reads a child's output stream line by line into log records. Reading never pauses, so a child
 * never blocks on a full pipe, and a line longer than `maxLine` bytes is logged in numbered parts
 * (cut between UTF-8 characters) instead of being buffered without bound, whether it arrived
 * whole or in pieces.
 */
export function forwardChildOutput(source: Readable, options: ChildOutputOptions): void {
  const bound = options.wrap ? boundKeys(options.logger) : new Set<string>();
  const { maxLine } = options;
  let pending: Buffer | undefined;
  let part = 0;
  const whole = (data: Buffer, from: number, to: number) => {
    const end = to > from && data[to - 1] === 13 ? to - 1 : to;
    record(options, data.toString('utf8', from, end), part === 0 ? undefined : part + 1, true, bound);
    part = 0;
  };
  /** Logs full-size parts from `data[from, to)` while more than `maxLine` bytes remain; returns where the rest starts. */
  const parts = (data: Buffer, from: number, to: number): number => {
    while (to - from > maxLine) {
      const cut = cutAt(data, from, maxLine);
      part += 1;
      record(options, data.toString('utf8', from, cut), part, false, bound);
      from = cut;
    }
    return from;
  };
  source.on('data', (chunk: Buffer) => {
    const data = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
    pending = undefined;
    let from = 0;
    for (let newline = data.indexOf(10); newline !== -1; newline = data.indexOf(10, from)) {
      whole(data, parts(data, from, newline), newline);
      from = newline + 1;
    }
    from = parts(data, from, data.length);
    if (from < data.length) pending = Buffer.from(data.subarray(from));
  });
  source.on('end', () => {
    if (pending !== undefined) whole(pending, 0, pending.length);
    pending = undefined;
  });
}
