import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Invocation } from '../invocation.js';

/**
 * While a started process has not come up (an `http` upstream not answering its probe, a runtime
 * not saying `hello`), the log says so after `firstMs` and again every `everyMs`: otherwise the
 * instance just stays `starting`, with nothing in the log to say why.
 */
export const SLOW_START_WARNING = { firstMs: 5_000, everyMs: 30_000 } as const;

/** A scale hint from function code (the logger's `hints`). */
export interface FunctionHint {
  readonly saturated?: boolean;
  readonly load?: number;
  readonly metric?: string;
}

/** What a runner tells the watchdog about its process between requests. */
export interface RunnerEvents {
  /** The function can serve (first start, after a restart, or once specialized). */
  ready(): void;
  /** A runtime is up with no function loaded: the instance waits to be specialized. */
  generic(): void;
  /** The function cannot serve for now; the reason is logged and shown to callers. */
  down(reason: string): void;
  /** The function will not come back; the instance is `failed`. */
  failed(reason: string): void;
  /** A process or runtime start took `seconds` until it could serve (or, a runtime, until generic). */
  started(seconds: number): void;
  /** The process or runtime is being restarted. */
  restarted(): void;
  /** The function's own code sent a scale hint. */
  hint(hint: FunctionHint): void;
}

/**
 * One way of running a function. Each mode (`http`, `serializing`, `streaming`, `static`)
 * implements this; the listener does admission, timeouts and errors around it.
 */
export interface Runner {
  /** Starts whatever the mode keeps running and resolves once a request can be served. */
  start(): Promise<void>;
  /**
   * Serves one request; the response carries `invocation.responseHeaders`. Resolves when the
   * response is complete; rejects with a `WatchdogError` when the watchdog must answer instead.
   * Once `invocation` is aborted, the runner stops its work and writes nothing more: the
   * listener answers with the abort reason.
   */
  handle(req: IncomingMessage, res: ServerResponse, invocation: Invocation): Promise<void>;
  /** Whether the function can serve right now (for `/_/health`). */
  readonly healthy: boolean;
  /** Stops what the mode keeps running, killing it if it outlives `graceMs`. */
  stop(graceMs: number): Promise<void>;
}
