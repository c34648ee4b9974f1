import type { Logger } from 'pino';
import type { WatchdogError } from './errors.js';
import type { TraceContext } from './tracing.js';

/** One request as the runners see it. Travels explicitly; nothing about it is module state. */
export interface Invocation {
  /** `X-Request-Id` as received, or a fresh one. */
  readonly id: string;
  /** The request's place in its trace; the function gets `trace.traceparent`. */
  readonly trace: TraceContext;
  /** Epoch ms by which the watchdog answers 504; undefined without an exec timeout. */
  readonly deadline: number | undefined;
  /** Aborted when the request must stop: exec timeout, client gone, upstream died, shutdown. */
  readonly signal: AbortSignal;
  /** Ends the request with `error`; the listener answers with it if nothing was sent yet. */
  readonly abort: (error: WatchdogError) => void;
  /** Logger bound to this request's id. Created lazily: most requests never log. */
  readonly log: () => Logger;
}
