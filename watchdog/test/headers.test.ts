import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { upstreamRequestHeaders } from '../src/proxy/headers.js';

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
});
