import { randomFillSync } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import {
  createTraceState,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from '@opentelemetry/api';

/** The trace position of one request as it passes through the watchdog. */
export interface TraceContext {
  /** 32 hex digits: the caller's trace, or a new one. */
  readonly traceId: string;
  /** 16 hex digits: the watchdog's own span for this request, parent of the function's. */
  readonly spanId: string;
  /** 2 hex digits. */
  readonly traceFlags: string;
  /** The caller's `tracestate`, passed on untouched. */
  readonly traceState: string | undefined;
  /** `traceparent` naming the watchdog's span, to send to the function. */
  readonly traceparent: string;
}

/** A started server span; `end` records the status. */
export interface ServerSpan {
  readonly context: TraceContext;
  end(status: number): void;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);
const SDK_RECHECK_MS = 1_000;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Random bytes drawn a few kilobytes at a time: ids need 24 bytes a request, not a syscall each. */
const RANDOM = Buffer.alloc(4_096);
let randomAt = RANDOM.length;

/** A random id of `bytes` bytes as hex. */
function randomHex(bytes: number): string {
  if (randomAt + bytes > RANDOM.length) {
    randomFillSync(RANDOM);
    randomAt = 0;
  }
  randomAt += bytes;
  return RANDOM.toString('hex', randomAt - bytes, randomAt);
}

/** `end` of a span nobody records. */
function unrecorded(): void {}

interface Parent {
  traceId: string;
  spanId: string;
  traceFlags: string;
}

/** Parses a W3C `traceparent`; an invalid one is ignored, as the spec asks. */
function parseTraceparent(value: string | undefined): Parent | undefined {
  if (value === undefined) return undefined;
  const match = TRACEPARENT.exec(value.trim().toLowerCase());
  if (!match || match[1] === 'ff' || match[2] === ZERO_TRACE || match[3] === ZERO_SPAN) return undefined;
  if (match[1] === '00' && value.trim().length !== 55) return undefined;
  return { traceId: match[2] as string, spanId: match[3] as string, traceFlags: match[4] as string };
}

/** True once an OpenTelemetry SDK has registered a tracer provider. */
function sdkRegistered(): boolean {
  const provider = trace.getTracerProvider();
  const delegate = provider instanceof ProxyTracerProvider ? provider.getDelegate() : provider;
  return delegate.constructor.name !== 'NoopTracerProvider';
}

/**
 * Server spans for requests, through the OpenTelemetry API. Without a registered SDK nothing is
 * recorded and no OpenTelemetry object is made: the ids are generated here, so the trace still
 * reaches logs, the function and the response at the cost of a few random numbers.
 */
export class Tracing {
  #tracer: Tracer | undefined;
  #checkedAt = Number.NEGATIVE_INFINITY;

  /** Starts the span for `req`, continuing the caller's trace if it sent a valid `traceparent`. */
  start(req: IncomingMessage, name: string): ServerSpan {
    const parent = parseTraceparent(req.headers.traceparent as string | undefined);
    const traceState = parent ? (req.headers.tracestate as string | undefined) : undefined;
    // An SDK registers once, normally before the watchdog starts: look for it at most once a
    // second rather than on every request.
    if (!this.#tracer) {
      const now = performance.now();
      if (now - this.#checkedAt >= SDK_RECHECK_MS) {
        this.#checkedAt = now;
        if (sdkRegistered()) this.#tracer = trace.getTracer('pilotlight-watchdog');
      }
    }
    if (!this.#tracer) {
      const traceId = parent?.traceId ?? randomHex(16);
      const spanId = randomHex(8);
      const traceFlags = parent?.traceFlags ?? '00';
      const context = { traceId, spanId, traceFlags, traceState, traceparent: `00-${traceId}-${spanId}-${traceFlags}` };
      return { context, end: unrecorded };
    }
    return this.#recorded(req, name, parent, traceState);
  }

  #recorded(req: IncomingMessage, name: string, parent: Parent | undefined, traceState: string | undefined): ServerSpan {
    const parentContext = parent
      ? trace.setSpanContext(ROOT_CONTEXT, {
          traceId: parent.traceId,
          spanId: parent.spanId,
          traceFlags: Number.parseInt(parent.traceFlags, 16),
          isRemote: true,
          traceState: traceState ? createTraceState(traceState) : undefined,
        })
      : ROOT_CONTEXT;
    const span: Span = (this.#tracer as Tracer).startSpan(
      name,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': req.method ?? 'GET',
          'url.path': (req.url ?? '/').split('?', 1)[0] as string,
          'request.id': (req.headers['x-request-id'] as string | undefined) ?? '',
        },
      },
      parentContext,
    );
    const ids = span.spanContext();
    const traceFlags = HEX[ids.traceFlags & 0xff] as string;
    return {
      context: {
        traceId: ids.traceId,
        spanId: ids.spanId,
        traceFlags,
        traceState,
        traceparent: `00-${ids.traceId}-${ids.spanId}-${traceFlags}`,
      },
      end: (status) => {
        span.setAttribute('http.response.status_code', status);
        if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      },
    };
  }
}
