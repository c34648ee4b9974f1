import type { IncomingMessage } from 'node:http';
import type { TraceContext } from '../tracing.js';
import { sameName } from './header-name.js';

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are never forwarded, plus
 * `expect`, which the watchdog answers itself. Matched by length, then case-insensitively in
 * place: no lower-case copy of every header name on every request and response.
 */
function isHopByHop(name: string): boolean {
  switch (name.length) {
    case 2:
      return sameName(name, 'te');
    case 6:
      return sameName(name, 'expect');
    case 7:
      return sameName(name, 'trailer') || sameName(name, 'upgrade');
    case 10:
      return sameName(name, 'connection') || sameName(name, 'keep-alive');
    case 16:
      return sameName(name, 'proxy-connection');
    case 17:
      return sameName(name, 'transfer-encoding');
    case 18:
      return sameName(name, 'proxy-authenticate');
    case 19:
      return sameName(name, 'proxy-authorization');
    default:
      return false;
  }
}

/** Extra names a `Connection` header declares hop-by-hop for this message. */
function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  // What nearly every message carries, if anything: names no other header.
  if (value === undefined || value === 'keep-alive' || value === 'close' || value === 'Keep-Alive') return undefined;
  const tokens = (Array.isArray(value) ? value.join(',') : value).split(',');
  const named = new Set<string>();
  for (const token of tokens) {
    const name = token.trim().toLowerCase();
    if (name !== '' && name !== 'close' && name !== 'keep-alive') named.add(name);
  }
  return named.size > 0 ? named : undefined;
}

/**
 * The headers to send upstream as a flat `[name, value, …]` list: the client's own, minus
 * hop-by-hop ones, with `X-Forwarded-For/-Proto/-Host` appended, the request id set, and the
 * caller's `traceparent` replaced by one naming the watchdog's span (each hop its own span).
 */
export function upstreamRequestHeaders(req: IncomingMessage, requestId: string, trace: TraceContext): string[] {
  const raw = req.rawHeaders;
  const extra = connectionTokens(req.headers.connection);
  const out: string[] = [];
  let forwardedFor: string | undefined;
  let hasRequestId = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (isHopByHop(name) || extra?.has(name.toLowerCase())) continue;
    if (sameName(name, 'x-forwarded-for')) {
      forwardedFor = forwardedFor === undefined ? (raw[i + 1] as string) : `${forwardedFor}, ${raw[i + 1]}`;
      continue;
    }
    if (sameName(name, 'x-forwarded-proto') || sameName(name, 'x-forwarded-host') || sameName(name, 'traceparent') || sameName(name, 'tracestate')) continue;
    if (sameName(name, 'x-request-id')) hasRequestId = true;
    out.push(name, raw[i + 1] as string);
  }
  let client = req.socket.remoteAddress ?? '';
  // An IPv4 client of a dual-stack listener shows as `::ffff:1.2.3.4`; passed on as the IPv4 address it is.
  if (client.startsWith('::ffff:') && client.includes('.')) client = client.slice(7);
  out.push('x-forwarded-for', forwardedFor === undefined ? client : `${forwardedFor}, ${client}`);
  out.push('x-forwarded-proto', (req.headers['x-forwarded-proto'] as string | undefined) ?? 'http');
  const host = (req.headers['x-forwarded-host'] as string | undefined) ?? req.headers.host;
  if (host !== undefined) out.push('x-forwarded-host', host);
  if (!hasRequestId) out.push('x-request-id', requestId);
  out.push('traceparent', trace.traceparent);
  if (trace.traceState !== undefined) out.push('tracestate', trace.traceState);
  return out;
}

/** An upstream response's head, ready for `writeHead`. */
export interface ResponseHead {
  /** Flat `[name, value, …]` for `writeHead`, hop-by-hop headers left out. */
  readonly headers: string[];
  /** A Server-Sent Events stream, to be flushed header first. */
  readonly eventStream: boolean;
}

/**
 * Turns the upstream's raw response headers into the flat list `writeHead` takes, dropping
 * hop-by-hop headers (and those a `Connection` header names) in one pass over the raw pairs,
 * and adding the watchdog's `x-request-id` and `traceresponse` unless the upstream set its own.
 */
export function responseHead(raw: readonly string[], ids: readonly [string, string, string, string]): ResponseHead {
  const out: string[] = [];
  let connection: string | undefined;
  let eventStream = false;
  let ownRequestId = false;
  let ownTraceresponse = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    if (isHopByHop(name)) {
      if (sameName(name, 'connection')) connection = connection === undefined ? value : `${connection},${value}`;
      continue;
    }
    if (sameName(name, 'content-type')) eventStream ||= value.startsWith('text/event-stream');
    else if (sameName(name, 'x-request-id')) ownRequestId = true;
    else if (sameName(name, 'traceresponse')) ownTraceresponse = true;
    out.push(name, value);
  }
  if (!ownRequestId) out.push(ids[0], ids[1]);
  if (!ownTraceresponse) out.push(ids[2], ids[3]);
  const extra = connectionTokens(connection);
  if (!extra) return { headers: out, eventStream };
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) {
    if (!extra.has((out[i] as string).toLowerCase())) kept.push(out[i] as string, out[i + 1] as string);
  }
  return { headers: kept, eventStream };
}

/** True when a request carries a body by HTTP/1.1's framing rules. */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
