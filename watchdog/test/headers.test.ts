import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { sameName } from '../src/proxy/header-name.js';
import { responseHead, upstreamRequestHeaders } from '../src/proxy/headers.js';

const TRACE = { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: '01', traceState: undefined, traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01` };

/** The parts of a request upstreamRequestHeaders reads. */
function request(remoteAddress: string, raw: string[] = []): IncomingMessage {
  const headers: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) headers[(raw[i] as string).toLowerCase()] = raw[i + 1] as string;
  return { rawHeaders: raw, headers, socket: { remoteAddress } } as unknown as IncomingMessage;
}

function forwardedFor(req: IncomingMessage): string | undefined {
  const out = upstreamRequestHeaders(req, 'id', TRACE);
  return out[out.indexOf('x-forwarded-for') + 1];
}

describe('upstreamRequestHeaders', () => {
  it('names an IPv4 client of a dual-stack listener by its IPv4 address in X-Forwarded-For', () => {
    expect(forwardedFor(request('::ffff:203.0.113.9'))).toBe('203.0.113.9');
    expect(forwardedFor(request('::ffff:10.0.0.1', ['X-Forwarded-For', '198.51.100.2']))).toBe('198.51.100.2, 10.0.0.1');
    expect(forwardedFor(request('2001:db8::1'))).toBe('2001:db8::1');
    expect(forwardedFor(request('127.0.0.1'))).toBe('127.0.0.1');
  });

  it('drops hop-by-hop headers in any case, and those Connection names, and puts its own trace and forwarding headers last', () => {
    const req = request('10.0.0.1', [
      'Host', 'fn.example',
      'CONNECTION', 'keep-alive, X-Secret',
      'Keep-Alive', 'timeout=5',
      'TE', 'trailers',
      'x-secret', 'hidden',
      'Proxy-Authorization', 'Basic x',
      'Expect', '100-continue',
      'Traceparent', '00-caller',
      'X-Forwarded-Proto', 'https',
      'X-Request-Id', 'given',
      'Accept', '*/*',
    ]);
    expect(upstreamRequestHeaders(req, 'id', TRACE)).toEqual([
      'Host', 'fn.example',
      'X-Request-Id', 'given',
      'Accept', '*/*',
      'x-forwarded-for', '10.0.0.1',
      'x-forwarded-proto', 'https',
      'x-forwarded-host', 'fn.example',
      'traceparent', TRACE.traceparent,
    ]);
  });
});

describe('responseHead', () => {
  const IDS = ['x-request-id', 'rid', 'traceresponse', 'tr'] as const;

  it('drops hop-by-hop headers and those Connection names, and adds the ids the upstream did not set', () => {
    const head = responseHead(
      ['Content-Type', 'text/plain', 'Connection', 'keep-alive', 'connection', 'X-Internal', 'X-INTERNAL', '1', 'Transfer-Encoding', 'chunked', 'X-Request-ID', 'own'],
      IDS,
    );
    expect(head).toEqual({ headers: ['Content-Type', 'text/plain', 'X-Request-ID', 'own', 'traceresponse', 'tr'], eventStream: false });
  });

  it('marks a Server-Sent Events stream by its content type in any case of the name', () => {
    expect(responseHead(['CONTENT-TYPE', 'text/event-stream; charset=utf-8'], IDS).eventStream).toBe(true);
    expect(responseHead(['content-type', 'text/html'], IDS).eventStream).toBe(false);
  });
});

describe('sameName', () => {
  it('compares letters in either case and everything else exactly', () => {
    expect(sameName('Content-Length', 'content-length')).toBe(true);
    expect(sameName('CONTENT-LENGTH', 'content-length')).toBe(true);
    expect(sameName('content-lengths', 'content-length')).toBe(false);
    // A carriage return is the hyphen with bit 0x20 cleared: a bitwise fold would take one for the other.
    expect(sameName('content\rlength', 'content-length')).toBe(false);
    expect(sameName('x_request_id', 'x-request-id')).toBe(false);
    expect(sameName('TE', 'te')).toBe(true);
    expect(sameName('tf', 'te')).toBe(false);
  });
});
