import { describe, expect, it } from 'vitest';
import { type ParsedHead, ResponseParseError, ResponseParser } from '../src/proxy/response-parser.js';

interface Seen {
  head?: ParsedHead;
  body: string;
  lastFlags: boolean[];
  complete: boolean;
}

/** Feeds `wire` to a fresh parser in pieces of `step` bytes (every split point gets exercised). */
function parse(wire: string, step: number, method = 'GET'): Seen & { parser: ResponseParser } {
  const parser = new ResponseParser();
  const seen: Seen = { body: '', lastFlags: [], complete: false };
  parser.reset(method, {
    onHead: (head) => {
      seen.head = head;
    },
    onBody: (chunk, last) => {
      seen.body += chunk.toString('latin1');
      seen.lastFlags.push(last);
    },
    onComplete: () => {
      seen.complete = true;
    },
  });
  const data = Buffer.from(wire, 'latin1');
  for (let at = 0; at < data.length; at += step) parser.execute(data.subarray(at, at + step));
  return { ...seen, parser };
}

const STEPS = [1, 2, 3, 7, 1_000];

describe('ResponseParser', () => {
  it('reads a Content-Length body however the bytes are split, and marks the last chunk', () => {
    const wire = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nX-Empty:\r\n\r\nhello world';
    for (const step of STEPS) {
      const seen = parse(wire, step);
      expect(seen.head).toEqual({ status: 200, headers: ['Content-Type', 'text/plain', 'Content-Length', '11', 'X-Empty', ''], keepAliveHint: undefined });
      expect(seen.body).toBe('hello world');
      expect(seen.complete).toBe(true);
      expect(seen.lastFlags.at(-1)).toBe(true);
      expect(seen.lastFlags.slice(0, -1).every((last) => !last)).toBe(true);
      expect(seen.parser.reusable).toBe(true);
    }
  });

  it('decodes chunked bodies with extensions and trailers', () => {
    const wire = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n';
    for (const step of STEPS) {
      const seen = parse(wire, step);
      expect(seen.body).toBe('hello world');
      expect(seen.complete).toBe(true);
      expect(seen.parser.reusable).toBe(true);
    }
  });

  it('skips 1xx heads and reports the final one', () => {
    const wire = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok';
    for (const step of STEPS) {
      const seen = parse(wire, step);
      expect(seen.head?.status).toBe(201);
      expect(seen.body).toBe('ok');
    }
  });

  it('expects no body after HEAD, 204 and 304', () => {
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', 1_000, 'HEAD').complete).toBe(true);
    expect(parse('HTTP/1.1 204 No Content\r\n\r\n', 1).complete).toBe(true);
    expect(parse('HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n', 1_000).complete).toBe(true);
  });

  it('reads a body without framing until the connection closes, and never reuses it', () => {
    const seen = parse('HTTP/1.1 200 OK\r\n\r\nstreamed until close', 4);
    expect(seen.complete).toBe(false);
    seen.parser.finish();
    expect(seen.parser.complete).toBe(true);
    expect(seen.parser.reusable).toBe(false);
  });

  it('honours Connection: close, HTTP/1.0 and the Keep-Alive timeout hint', () => {
    expect(parse('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n', 1_000).parser.reusable).toBe(false);
    expect(parse('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n', 1_000).parser.reusable).toBe(false);
    expect(parse('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n', 1_000).parser.reusable).toBe(true);
    expect(parse('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n', 1_000).head?.keepAliveHint).toBe(5);
  });

  it('does not reuse a connection that sent more than the response, or both framings', () => {
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA', 1_000).parser.reusable).toBe(false);
    const both = parse('HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n', 1_000);
    expect(both.body).toBe('ok');
    expect(both.parser.reusable).toBe(false);
  });

  it('passes on one Content-Length however often it came, and none next to Transfer-Encoding', () => {
    for (const step of STEPS) {
      const repeated = parse('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\ncontent-length: 2\r\n\r\nok', step);
      expect(repeated.head?.headers).toEqual(['Content-Length', '2', 'X-A', '1']);
      expect(repeated.body).toBe('ok');
      const both = parse('HTTP/1.1 200 OK\r\nContent-Length: 99\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n', step);
      expect(both.head?.headers).toEqual(['X-A', '1', 'Transfer-Encoding', 'chunked']);
      expect(both.body).toBe('ok');
    }
  });

  it('reads status lines with and without a reason, and header values without the blanks around them', () => {
    for (const step of [1, 1_000]) {
      const bare = parse('HTTP/1.0 503\r\nX-A:\t one two \t\r\nX-B:\r\ncontent-LENGTH: 2\r\n\r\nok', step);
      expect(bare.head?.status).toBe(503);
      expect(bare.head?.headers).toEqual(['X-A', 'one two', 'X-B', '', 'content-LENGTH', '2']);
      expect(bare.body).toBe('ok');
      // HTTP/1.0 without Keep-Alive closes the connection.
      expect(bare.parser.reusable).toBe(false);
      const reason = parse('HTTP/1.1 404 Not Found Here\r\nContent-Length: 0\r\n\r\n', step);
      expect(reason.head?.status).toBe(404);
      expect(reason.complete).toBe(true);
    }
  });

  it('refuses what breaks HTTP/1.1, naming the problem', () => {
    const bad: Array<[string, RegExp]> = [
      ['HTTP/2 200 OK\r\n\r\n', /invalid status line/],
      ['HTTP/1.2 200 OK\r\n\r\n', /invalid status line/],
      ['HTTP/1.1 099 Low\r\n\r\n', /invalid status line/],
      ['HTTP/1.1 20x OK\r\n\r\n', /invalid status line/],
      ['HTTP/1.1 200OK\r\n\r\n', /invalid status line/],
      ['HTTP/1.1 200 O\nK\r\n\r\n', /invalid status line/],
      ['HTTP/1.1 200 O\rK\r\n\r\n', /invalid status line/],
      ['HTTP/1.1 200 OK\r\nno colon here\r\n\r\n', /invalid header line/],
      ['HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n', /invalid header line/],
      ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', /invalid Content-Length/],
      ['HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', /invalid Content-Length/],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /invalid chunk size/],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n', /longer than its declared size/],
      ['HTTP/1.1 101 Switching Protocols\r\n\r\n', /upgrades are not proxied/],
    ];
    for (const [wire, message] of bad) expect(() => parse(wire, 1_000), wire).toThrow(message);
    expect(() => parse(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(70_000)}`, 1_000)).toThrow(/larger than/);
    // Also when the head's end arrives in the same read that takes it past the limit.
    expect(() => parse(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(70_000)}\r\n\r\n`, 40_000)).toThrow(/larger than/);
  });

  it('says the upstream closed early when the response is cut short', () => {
    const headless = parse('HTTP/1.1 200', 1_000);
    expect(() => headless.parser.finish()).toThrow(/before the response head/);
    const cut = parse('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel', 1_000);
    expect(() => cut.parser.finish()).toThrow(/in the middle of the response body/);
  });

  it('parses the next response on the same connection after reset', () => {
    const parser = new ResponseParser();
    const bodies: string[] = [];
    for (const text of ['one', 'two']) {
      parser.reset('GET', { onHead: () => {}, onBody: (chunk) => void bodies.push(chunk.toString()), onComplete: () => {} });
      parser.execute(Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n${text}`));
      expect(parser.complete).toBe(true);
    }
    expect(bodies).toEqual(['one', 'two']);
  });

  it('only ever fails with a ResponseParseError on mangled input, however it is split', () => {
    const valid = [
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n',
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n',
    ];
    // A fixed-seed generator: the same mangled inputs on every run.
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % n;
    };
    for (let round = 0; round < 3_000; round++) {
      const bytes = [...Buffer.from(valid[round % valid.length] as string, 'latin1')];
      for (let edits = 1 + random(4); edits > 0; edits--) {
        const at = random(bytes.length);
        const kind = random(3);
        if (kind === 0) bytes[at] = random(256);
        else if (kind === 1) bytes.splice(at, 1);
        else bytes.splice(at, 0, random(256));
      }
      const data = Buffer.from(bytes);
      const parser = new ResponseParser();
      parser.reset('GET', { onHead: () => {}, onBody: () => {}, onComplete: () => {} });
      const step = 1 + random(8);
      try {
        for (let at = 0; at < data.length; at += step) parser.execute(data.subarray(at, at + step));
      } catch (error) {
        expect(error, data.toString('latin1')).toBeInstanceOf(ResponseParseError);
      }
    }
  });
});
