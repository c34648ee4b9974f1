import { sameName } from './header-name.js';

/** An upstream response's head, as parsed: raw names and values, in order. */
export interface ParsedHead {
  readonly status: number;
  /** Flat `[name, value, …]`, every header as received (hop-by-hop ones included). */
  readonly headers: string[];
  /** Seconds from a `Keep-Alive: timeout=N` hint, if the upstream sent one. */
  readonly keepAliveHint: number | undefined;
}

/** What the parser reports, in order: one final head, body chunks (decoded), the end. */
export interface ResponseEvents {
  onHead(head: ParsedHead): void;
  /** A piece of the body, de-chunked; `last` when the framing says no more follows. */
  onBody(chunk: Buffer, last: boolean): void;
  onComplete(): void;
}

/** The upstream broke HTTP/1.1; the message says how. */
export class ResponseParseError extends Error {
  readonly code = 'UPSTREAM_BAD_RESPONSE';
}

/** A head bigger than this is refused rather than buffered without end. */
const MAX_HEAD_BYTES = 64 * 1024;
const MAX_CHUNK_LINE = 1024;
const CRLF_CRLF = Buffer.from('\r\n\r\n');
const DIGITS = /^\d+$/;
const HEX_SIZE = /^[0-9a-fA-F]{1,15}$/;

/**
 * The status code of the status line `text[0, end)`, `HTTP/1.x NNN[ reason]`, or 0 when it is
 * not one. Checked by character: a regex here ran, and allocated its match, on every response.
 */
function statusCode(text: string, end: number): number {
  if (end < 12 || !text.startsWith('HTTP/1.')) return 0;
  const minor = text.charCodeAt(7);
  if ((minor !== 48 && minor !== 49) || text.charCodeAt(8) !== 32) return 0;
  const hundreds = text.charCodeAt(9) - 48;
  const tens = text.charCodeAt(10) - 48;
  const units = text.charCodeAt(11) - 48;
  if (hundreds < 1 || hundreds > 9 || tens < 0 || tens > 9 || units < 0 || units > 9) return 0;
  // The reason phrase, if any, follows a space and holds no bare CR or LF.
  if (end > 12) {
    if (text.charCodeAt(12) !== 32) return 0;
    const cr = text.indexOf('\r', 13);
    const lf = text.indexOf('\n', 13);
    if ((cr !== -1 && cr < end) || (lf !== -1 && lf < end)) return 0;
  }
  return hundreds * 100 + tens * 10 + units;
}

/** A header's value, `text[from, to)` without the whitespace around it; sliced once in the common case. */
function fieldValue(text: string, from: number, to: number): string {
  let start = from;
  let stop = to;
  while (start < stop && isSpace(text.charCodeAt(start))) start += 1;
  while (stop > start && isSpace(text.charCodeAt(stop - 1))) stop -= 1;
  return text.slice(start, stop);
}

function isSpace(code: number): boolean {
  return code === 32 || code === 9;
}

const enum Phase {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkEnd,
  Trailers,
  UntilClose,
  Done,
}

/**
 * An incremental HTTP/1.1 response parser for the watchdog's own upstream connections: feed it
 * socket data as it arrives; it reports the final head (1xx heads are skipped), the body decoded
 * from Content-Length, chunked or close-delimited framing (RFC 9112 §6), and the end. One parser
 * serves one exchange at a time; `reset` readies it for the next on a kept-alive connection.
 */
export class ResponseParser {
  #phase = Phase.Done;
  #events: ResponseEvents | undefined;
  #noBody = false;
  #pending: Buffer | undefined;
  #remaining = 0;
  #line = '';
  #keepAlive = false;
  /** Bytes arrived after the response ended: the connection cannot be trusted for another. */
  extraData = false;

  /** Readies the parser for the response to a request made with `method`. */
  reset(method: string, events: ResponseEvents): void {
    this.#phase = Phase.Head;
    this.#events = events;
    this.#noBody = method === 'HEAD';
    this.#pending = undefined;
    this.extraData = false;
  }

  /** True once the whole response has been seen. */
  get complete(): boolean {
    return this.#phase === Phase.Done;
  }

  /** The response allows the connection to be reused; meaningful once complete. */
  get reusable(): boolean {
    return this.#keepAlive && !this.extraData;
  }

  /** Parses `data`; throws `ResponseParseError` when the upstream broke the protocol. */
  execute(data: Buffer): void {
    let at = 0;
    while (at < data.length) {
      switch (this.#phase) {
        case Phase.Head:
          at = this.#head(data, at);
          break;
        case Phase.Length:
          at = this.#counted(data, at, true);
          if (this.#remaining === 0) this.#complete();
          break;
        case Phase.ChunkData:
          at = this.#counted(data, at, false);
          if (this.#remaining === 0) {
            this.#phase = Phase.ChunkEnd;
            this.#line = '';
          }
          break;
        case Phase.ChunkSize:
        case Phase.ChunkEnd:
        case Phase.Trailers:
          at = this.#lines(data, at);
          break;
        case Phase.UntilClose:
          this.#body(data, at, data.length, false);
          at = data.length;
          break;
        case Phase.Done:
          this.extraData = true;
          return;
      }
    }
  }

  /**
   * The upstream closed the connection. Completes a close-delimited body; anything else that
   * was not finished yet throws.
   */
  finish(): void {
    if (this.#phase === Phase.UntilClose) {
      this.#complete();
      return;
    }
    if (this.#phase !== Phase.Done) {
      const where = this.#phase === Phase.Head ? 'before the response head' : 'in the middle of the response body';
      throw Object.assign(new Error(`it closed the connection ${where}`), { code: 'UPSTREAM_CLOSED' });
    }
  }

  /**
   * Reports what `data` holds of the `#remaining` bytes a Content-Length or a chunk declared;
   * returns where the rest starts. `endsBody`: those bytes end the body (Content-Length).
   */
  #counted(data: Buffer, at: number, endsBody: boolean): number {
    const take = Math.min(this.#remaining, data.length - at);
    this.#remaining -= take;
    this.#body(data, at, at + take, endsBody && this.#remaining === 0);
    return at + take;
  }

  #body(data: Buffer, from: number, to: number, last: boolean): void {
    if (to > from) this.#events?.onBody(data.subarray(from, to), last);
  }

  #complete(): void {
    this.#phase = Phase.Done;
    const events = this.#events;
    this.#events = undefined;
    events?.onComplete();
  }

  /** Collects the head; returns where the rest of `data` (the body) starts. */
  #head(data: Buffer, at: number): number {
    const pending = this.#pending;
    const buffer = pending ? Buffer.concat([pending, data.subarray(at)]) : data;
    const from = pending ? 0 : at;
    // Look back three bytes so a CRLFCRLF split across reads is found.
    const end = buffer.indexOf(CRLF_CRLF, pending ? Math.max(0, pending.length - 3) : at);
    if (end === -1) {
      if (buffer.length - from > MAX_HEAD_BYTES) throw new ResponseParseError(`response head larger than ${MAX_HEAD_BYTES} bytes`);
      this.#pending = Buffer.from(buffer.subarray(from));
      return data.length;
    }
    if (end - from > MAX_HEAD_BYTES) throw new ResponseParseError(`response head larger than ${MAX_HEAD_BYTES} bytes`);
    this.#pending = undefined;
    this.#onHead(buffer.toString('latin1', from, end));
    return pending ? at + end + 4 - pending.length : end + 4;
  }

  #onHead(text: string): void {
    let firstEnd = text.indexOf('\r\n');
    if (firstEnd === -1) firstEnd = text.length;
    const status = statusCode(text, firstEnd);
    if (status === 0) throw new ResponseParseError(`invalid status line ${JSON.stringify(text.slice(0, Math.min(firstEnd, 80)))}`);
    const http10 = text.charCodeAt(7) === 48;
    const headers: string[] = [];
    let length: string | undefined;
    let lengthAt = 0;
    let chunked = false;
    let encoded = false;
    let close = http10;
    let keepAliveHint: number | undefined;
    // One pass over the lines with indexOf: no array of lines, no regex or lower-case copy per header.
    for (let at = firstEnd + 2; at < text.length; ) {
      let end = text.indexOf('\r\n', at);
      if (end === -1) end = text.length;
      const colon = text.indexOf(':', at);
      const first = text.charCodeAt(at);
      // Obsolete line folding (a line starting with whitespace) is refused, as RFC 9112 §5.2 allows.
      if (colon <= at || colon > end || first === 32 || first === 9) {
        throw new ResponseParseError(`invalid header line ${JSON.stringify(text.slice(at, Math.min(end, at + 80)))}`);
      }
      const name = text.slice(at, colon);
      const value = fieldValue(text, colon + 1, end);
      at = end + 2;
      if (sameName(name, 'content-length')) {
        if (!DIGITS.test(value) || (length !== undefined && length !== value)) throw new ResponseParseError(`invalid Content-Length ${JSON.stringify(value)}`);
        // Passed on once, however often it came.
        if (length !== undefined) continue;
        lengthAt = headers.length;
        length = value;
      } else if (sameName(name, 'transfer-encoding')) {
        encoded = true;
        chunked = /(?:^|,)\s*chunked\s*$/i.test(value);
      } else if (sameName(name, 'connection')) {
        const tokens = value.toLowerCase();
        if (/(?:^|,)\s*close\s*(?:,|$)/.test(tokens)) close = true;
        else if (http10 && /(?:^|,)\s*keep-alive\s*(?:,|$)/.test(tokens)) close = false;
      } else if (sameName(name, 'keep-alive')) {
        const hint = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i.exec(value);
        if (hint) keepAliveHint = Number(hint[1]);
      }
      headers.push(name, value);
    }
    // A Content-Length next to Transfer-Encoding does not describe the body passed on (that is
    // de-chunked and framed afresh for the client), so it goes, as RFC 9112 §6.3 tells a proxy.
    if (length !== undefined && encoded) headers.splice(lengthAt, 2);
    if (status < 200) {
      // 1xx heads are informational and the final head follows; 101 would switch protocols.
      if (status === 101) throw new ResponseParseError('upstream switched protocols (101); upgrades are not proxied');
      return;
    }
    const events = this.#events;
    if (this.#noBody || status === 204 || status === 304) {
      this.#keepAlive = !close;
      events?.onHead({ status, headers, keepAliveHint });
      this.#complete();
      return;
    }
    if (encoded) {
      // Transfer-Encoding wins over Content-Length, and a message with both is not trusted further.
      this.#keepAlive = chunked && length === undefined && !close;
      this.#phase = chunked ? Phase.ChunkSize : Phase.UntilClose;
      this.#line = '';
    } else if (length !== undefined) {
      this.#keepAlive = !close;
      this.#remaining = Number(length);
      this.#phase = Phase.Length;
    } else {
      this.#keepAlive = false;
      this.#phase = Phase.UntilClose;
    }
    events?.onHead({ status, headers, keepAliveHint });
    if (this.#phase === Phase.Length && this.#remaining === 0) this.#complete();
  }

  /** Chunk-size lines, the CRLF after chunk data, and trailer lines: one line at a time. */
  #lines(data: Buffer, at: number): number {
    const newline = data.indexOf(10, at);
    const to = newline === -1 ? data.length : newline + 1;
    this.#line += data.toString('latin1', at, to);
    if (this.#line.length > MAX_CHUNK_LINE) throw new ResponseParseError('chunk line too long');
    if (newline === -1) return to;
    const line = this.#line.endsWith('\r\n') ? this.#line.slice(0, -2) : this.#line.slice(0, -1);
    this.#line = '';
    if (this.#phase === Phase.ChunkEnd) {
      if (line !== '') throw new ResponseParseError('chunk data longer than its declared size');
      this.#phase = Phase.ChunkSize;
    } else if (this.#phase === Phase.ChunkSize) {
      const size = (line.split(';', 1)[0] as string).trim();
      if (!HEX_SIZE.test(size)) throw new ResponseParseError(`invalid chunk size ${JSON.stringify(size.slice(0, 20))}`);
      this.#remaining = Number.parseInt(size, 16);
      this.#phase = this.#remaining === 0 ? Phase.Trailers : Phase.ChunkData;
    } else if (line === '') {
      this.#complete();
    }
    return to;
  }
}
