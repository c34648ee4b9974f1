/**
 * Value parsers for settings. Each returns the parsed value or throws a `TypeError` whose message
 * says what was expected; the loader prefixes it with the setting's names.
 */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
/** Node's timers hold at most 2^31 - 1 ms (about 24.8 days); a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Whole milliseconds: a positive duration never rounds down to 0, which means "off". */
function wholeMs(ms: number): number {
  if (ms > MAX_TIMER_MS) throw new TypeError(`expected a duration of at most 24 days (${MAX_TIMER_MS} ms), or 0 where 0 turns it off`);
  return ms > 0 && ms < 1 ? 1 : Math.round(ms);
}

/**
 * Parses a duration into milliseconds. Accepts Go's notation (`1m30s`, `500ms`) because
 * of-watchdog's settings use it, and a bare number as seconds because of-watchdog does that too.
 */
export function parseDuration(raw: string): number {
  const text = raw.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return wholeMs(Number(text) * 1000);
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = part.exec(text); match; match = part.exec(text)) {
    total += Number(match[1]) * (DURATION_UNITS[match[2] as string] as number);
    consumed = part.lastIndex;
  }
  if (consumed === 0 || consumed !== text.length) {
    throw new TypeError('expected a duration such as 500ms, 10s, 1m30s or a number of seconds');
  }
  return wholeMs(total);
}

/** Parses a duration that must be above 0 (a period or a wait that 0 would make meaningless). */
export function parseInterval(raw: string): number {
  const ms = parseDuration(raw);
  if (ms === 0) throw new TypeError('expected a duration above 0, such as 500ms or 5s');
  return ms;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** Parses a byte size: a number with an optional unit (`512`, `64kb`, `10MiB`, `1GiB`). */
export function parseSize(raw: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(raw.trim());
  const unit = SIZE_UNITS[(match?.[2] ?? '?').toLowerCase()];
  if (!match || unit === undefined) {
    throw new TypeError('expected a size such as 1048576, 512kb, 10MiB or 1GiB');
  }
  return Math.floor(Number(match[1]) * unit);
}

/** Parses a log line length: a size of at least 1 KiB. */
export function parseLineSize(raw: string): number {
  const size = parseSize(raw);
  if (size < 1024) throw new TypeError('expected a size of at least 1KiB, such as 64KiB');
  return size;
}

/** Parses a non-negative integer. */
export function parseCount(raw: string): number {
  const text = raw.trim();
  if (!/^\d+$/.test(text)) throw new TypeError('expected a whole number, 0 or more');
  return Number(text);
}

/** Parses a TCP port; 0 asks the OS for a free one. */
export function parsePort(raw: string): number {
  const port = parseCount(raw);
  if (port > 65535) throw new TypeError('expected a port number between 0 and 65535');
  return port;
}

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

/** True when `raw` is one of the words {@link parseBool} reads: a boolean flag may take it as its value. */
export function isBoolWord(raw: string): boolean {
  const text = raw.trim().toLowerCase();
  return TRUE.has(text) || FALSE.has(text);
}

/** Parses a boolean written as true/false, 1/0, yes/no or on/off. */
export function parseBool(raw: string): boolean {
  const text = raw.trim().toLowerCase();
  if (TRUE.has(text)) return true;
  if (FALSE.has(text)) return false;
  throw new TypeError('expected true or false');
}

/** Builds a parser that accepts one of the given words. */
export function parseOneOf<T extends string>(choices: readonly T[]): (raw: string) => T {
  return (raw) => {
    const text = raw.trim() as T;
    if (!choices.includes(text)) throw new TypeError(`expected one of ${choices.join(', ')}`);
    return text;
  };
}

/** Parses an absolute http(s) URL, normalised without a trailing slash on its path. */
export function parseHttpUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new TypeError('expected an absolute URL such as http://127.0.0.1:3000');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`expected an http:// or https:// URL, got protocol ${url.protocol}`);
  }
  // Only a bare `/` goes: a path's own trailing slash is part of where to send.
  return url.pathname === '/' && url.search === '' ? url.href.replace(/\/$/, '') : url.href;
}

/** Accepts any non-empty text. */
export function parseText(raw: string): string {
  const text = raw.trim();
  if (text === '') throw new TypeError('expected a non-empty value');
  return text;
}

/** Accepts text that is a valid HTTP header value (no control characters but tab). */
export function parseHeaderValue(raw: string): string {
  const text = parseText(raw);
  if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(text)) throw new TypeError('expected a value that can be sent as an HTTP header (no control characters)');
  return text;
}

/** Parses an HTTP path that must start with `/`. */
export function parsePath(raw: string): string {
  const text = parseText(raw);
  if (!text.startsWith('/')) throw new TypeError('expected a path starting with /');
  return text;
}
