import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { WatchdogError } from './errors.js';
import type { TraceContext } from './tracing.js';

/** Sets a response's request id and `traceresponse` with `setHeader`. */
export function setResponseIds(res: ServerResponse, requestId: string, traceparent: string): void {
  res.setHeader('x-request-id', requestId);
  res.setHeader('traceresponse', traceparent);
}

/**
 * One request as the runners see it. Travels explicitly; nothing about it is module state.
 *
 * Aborting is a plain callback rather than an `AbortController`: there is exactly one piece of
 * work to stop per request, and an `EventTarget` per request was a measurable share of the
 * proxy's CPU (docs/benchmarks.md).
 */
export class Invocation {
  #reason: Error | undefined;
  #stop: ((reason: Error) => void) | undefined;
  #log: Logger | undefined;

  constructor(
    /** `X-Request-Id` as received, or a fresh one. */
    readonly id: string,
    /** The request's place in its trace; the function gets `trace.traceparent`. */
    readonly trace: TraceContext,
    /** Epoch ms by which the watchdog answers 504; undefined without an exec timeout. */
    readonly deadline: number | undefined,
    private readonly logger: Logger,
    /** Answers the client with a watchdog error (when nothing was sent yet). */
    private readonly answer: (error: WatchdogError) => void,
  ) {}

  /**
   * Headers every response to this request carries: the request id, and W3C Trace Context's
   * `traceresponse` naming the watchdog's span. Runners put them into the head they write.
   */
  get responseHeaders(): [string, string, string, string] {
    return ['x-request-id', this.id, 'traceresponse', this.trace.traceparent];
  }

  /** Sets `responseHeaders` on `res`, for runners that build their head with `setHeader`. */
  setResponseHeaders(res: ServerResponse): void {
    setResponseIds(res, this.id, this.trace.traceparent);
  }

  /** True once the request was aborted: exec timeout, client gone, upstream died, shutdown. */
  get aborted(): boolean {
    return this.#reason !== undefined;
  }

  /**
   * Sets what stops the request's work when it is aborted (undefined: nothing to stop any more).
   * Called at once if the request was already aborted.
   */
  onAbort(stop: ((reason: Error) => void) | undefined): void {
    this.#stop = stop;
    if (stop && this.#reason) stop(this.#reason);
  }

  /** Ends the request with `error`: its work stops and the listener answers with the error. */
  abort(error: WatchdogError): void {
    if (this.#cancel(error)) this.answer(error);
  }

  /** The client went away: the work stops and nobody is answered. */
  cancel(reason: Error): void {
    this.#cancel(reason);
  }

  /** Logger bound to this request's id and trace. Created lazily: most requests never log. */
  log(): Logger {
    const trace = this.trace;
    return (this.#log ??= this.logger.child({ request_id: this.id, trace_id: trace.traceId, span_id: trace.spanId, trace_flags: trace.traceFlags }));
  }

  #cancel(reason: Error): boolean {
    if (this.#reason) return false;
    this.#reason = reason;
    const stop = this.#stop;
    this.#stop = undefined;
    stop?.(reason);
    return true;
  }
}
