import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { createLogger, type InvocationFields, type Logger, runInInvocation } from '@pilotlight/logger';
import type { InvocationContext } from '../context.js';

/** What the runtime knows about the function it serves. */
export interface FunctionInfo {
  readonly name?: string | undefined;
  readonly version?: string | undefined;
  readonly instance?: string | undefined;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const INVALID_TRACE = '0'.repeat(32);

// Lines of the context's logger carry the ids as bindings, so it must not inject them again.
let contextLoggerBase: Logger | undefined;

/**
 * A signal aborted when `res` closes before it is complete. Made only when a function asks for
 * it: most never do, and a controller and a listener per request are not free.
 */
function abandonedSignal(res: ServerResponse | undefined): AbortSignal {
  const controller = new AbortController();
  const abandon = () => {
    if (!res?.writableFinished) {
      controller.abort(new DOMException('the response can no longer be delivered: its connection closed before it was complete', 'AbortError'));
    }
  };
  if (res?.destroyed) abandon();
  else res?.once('close', abandon);
  return controller.signal;
}

/**
 * The context of one invocation, from the headers the watchdog sends: `x-request-id`,
 * `traceparent` (this invocation gets a fresh span id as a child of the caller's span; without a
 * valid one a new trace starts) and `x-pilotlight-deadline`. Its `signal` follows `res`; without
 * one it never aborts.
 */
export function createContext(req: IncomingMessage, info: FunctionInfo, res?: ServerResponse): { context: InvocationContext; fields: InvocationFields } {
  const requestId = (req.headers['x-request-id'] as string | undefined) || randomUUID();
  const parent = TRACEPARENT.exec((req.headers.traceparent as string | undefined) ?? '');
  const traceId = parent && parent[1] !== INVALID_TRACE ? (parent[1] as string) : randomBytes(16).toString('hex');
  const traceFlags = parent ? (parent[3] as string) : '01';
  const spanId = randomBytes(8).toString('hex');
  const deadlineHeader = Number(req.headers['x-pilotlight-deadline']);
  const deadline = Number.isFinite(deadlineHeader) && deadlineHeader > 0 ? new Date(deadlineHeader) : undefined;
  const fields: InvocationFields = {
    request_id: requestId,
    trace_id: traceId,
    span_id: spanId,
    trace_flags: traceFlags,
    function: info.name,
    instance: info.instance,
  };
  let logger: Logger | undefined;
  let signal: AbortSignal | undefined;
  const context: InvocationContext = {
    requestId,
    traceId,
    spanId,
    traceFlags,
    traceparent: `00-${traceId}-${spanId}-${traceFlags}`,
    deadline,
    remainingMs: () => (deadline ? Math.max(0, deadline.getTime() - Date.now()) : Number.POSITIVE_INFINITY),
    functionName: info.name,
    functionVersion: info.version,
    instanceId: info.instance,
    get logger() {
      contextLoggerBase ??= createLogger({ injectInvocation: false });
      return (logger ??= contextLoggerBase.child(fields));
    },
    get signal() {
      return (signal ??= abandonedSignal(res));
    },
  };
  return { context, fields };
}

/** Wraps a listener so each request runs inside its own invocation (context and log fields). */
export function withInvocation(listener: RequestListener, info: FunctionInfo): RequestListener {
  return (req, res) => {
    const { context, fields } = createContext(req, info, res);
    runInInvocation({ fields, context }, () => listener(req, res));
  };
}
