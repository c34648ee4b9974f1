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
    options.logger[method]({ ...fields, stream: options.stream, child_time: time }, typeof msg === 'string' ? msg : '');
    return;
  }
  const partInfo = part === undefined ? {} : { part, partial: !last };
  options.logger[fallback as 'info']({ stream: options.stream, ...partInfo }, line);
}

/**
 * Reads a child's output stream line by line into log records. Reading never pauses, so a child
 * never blocks on a full pipe, and a line longer than `maxLine` is logged in numbered parts
 * instead of being buffered without bound.
 */
export function forwardChildOutput(source: Readable, options: ChildOutputOptions): void {
  source.setEncoding('utf8');
  const bound = options.wrap ? boundKeys(options.logger) : new Set<string>();
  let pending = '';
  let part = 0;
  source.on('data', (chunk: string) => {
    let text = pending + chunk;
    let newline = text.indexOf('\n');
    while (newline !== -1) {
      const line = text.charCodeAt(newline - 1) === 13 ? text.slice(0, newline - 1) : text.slice(0, newline);
      record(options, line, part === 0 ? undefined : part + 1, true, bound);
      part = 0;
      text = text.slice(newline + 1);
      newline = text.indexOf('\n');
    }
    while (text.length > options.maxLine) {
      part += 1;
      record(options, text.slice(0, options.maxLine), part, false, bound);
      text = text.slice(options.maxLine);
    }
    pending = text;
  });
  source.on('end', () => {
    if (pending !== '') record(options, pending, part === 0 ? undefined : part + 1, true, bound);
    pending = '';
  });
}
