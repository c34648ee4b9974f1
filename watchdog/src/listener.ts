import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Admission } from './admission.js';
import type { Config } from './config/settings.js';
import { parseDuration } from './config/parsers.js';
import { sendError, WatchdogError } from './errors.js';
import { Invocation, setResponseIds } from './invocation.js';
import type { Lifecycle, State } from './lifecycle.js';
import { bodyTooLarge, discardUnreadBody } from './proxy/body-limit.js';
import type { Metrics } from './metrics.js';
import type { Runner } from './runners/runner.js';
import type { LoadEstimator } from './scale/estimator.js';
import type { ServerSpan, Tracing } from './tracing.js';

/** What the listener works with, passed in by the watchdog. */
export interface ListenerDeps {
  readonly config: Config;
  readonly lifecycle: Lifecycle;
  readonly admission: Admission;
  readonly runner: Runner;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly tracing: Tracing;
  readonly estimator: LoadEstimator;
  /** Told when a request found every slot busy (it queues or is refused): a hint goes out at once. */
  readonly saturation: () => void;
  /** Serves `/_/…`. */
  readonly control: (req: IncomingMessage, res: ServerResponse) => void;
  /**
   * A secret the watchdog's own warm-up requests carry (`x-pilotlight-warm`): they pass in any
   * state and are left out of metrics and scale hints.
   */
  readonly warmToken: string;
}

const NOT_SERVING: Record<Exclude<State, 'ready'>, () => WatchdogError> = {
  starting: () => new WatchdogError('PILOTLIGHT_NOT_READY', 'the function is still starting; retry shortly', { 'retry-after': '1' }),
  generic: () => new WatchdogError('PILOTLIGHT_NOT_READY', 'no function is loaded into this instance yet', { 'retry-after': '1' }),
  specializing: () => new WatchdogError('PILOTLIGHT_NOT_READY', 'the function is being loaded; retry shortly', { 'retry-after': '1' }),
  draining: () => new WatchdogError('PILOTLIGHT_DRAINING', 'this instance is shutting down; send the request to another one', { connection: 'close' }),
  failed: () => new WatchdogError('PILOTLIGHT_FAILED', 'the function process could not be kept running; this instance is failed'),
};

/**
 * A request target in absolute-form (`http://host/path?q`, which a client talking to a proxy
 * sends and every server must accept, RFC 9112 §3.2.2) as origin-form. Anything else (`*`,
 * authority-form) is left as sent.
 */
function originForm(target: string): string {
  if (!/^https?:\/\//i.test(target)) return target;
  try {
    const url = new URL(target);
    return `${url.pathname}${url.search}`;
  } catch {
    return target;
  }
}

/**
 * The status a finished request is counted and logged with: unanswered (its client went away),
 * res.statusCode is still its default 200, which must not count as a success; nginx's 499
 * ("client closed request") instead.
 */
function outcome(res: ServerResponse): number {
  return res.headersSent ? res.statusCode : 499;
}

/** Answers with a watchdog error (the ids only if nothing was sent yet). */
function answerError(req: IncomingMessage, res: ServerResponse, requestId: string, traceparent: string, error: WatchdogError): void {
  if (!res.headersSent) setResponseIds(res, requestId, traceparent);
  sendError(res, error, requestId);
}

/**
 * The function port's request path: `/_/` to the control surface, everything else through
 * admission (concurrency limit and queue), the exec timeout, and then the mode's runner.
 */
export class Listener {
  #active = 0;
  #accepting = true;
  #onIdle: (() => void) | undefined;

  constructor(private readonly deps: ListenerDeps) {}

  /** Requests admitted or queued and not yet finished. */
  get active(): number {
    return this.#active;
  }

  /** Stops taking new function requests; those already admitted or queued go on. */
  stopAccepting(): void {
    this.#accepting = false;
  }

  /** Resolves once no request is active. */
  idle(): Promise<void> {
    if (this.#active === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#onIdle = resolve;
    });
  }

  /** The `request` handler of the function port's server. */
  readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    // Every runner, the control surface and the upstream expect origin-form (`/path?query`).
    if ((req.url as string).charCodeAt(0) !== 47) req.url = originForm(req.url as string);
    const url = req.url as string;
    if (url.charCodeAt(0) === 47 && url.charCodeAt(1) === 95 && url.charCodeAt(2) === 47) {
      if (req.headers.expect !== undefined) res.writeContinue();
      this.deps.control(req, res);
      return;
    }
    const { lifecycle, config, admission, tracing } = this.deps;
    const started = performance.now();
    const requestId = (req.headers['x-request-id'] as string | undefined) || randomUUID();
    const span = tracing.start(req, req.method ?? 'GET');
    const warm = req.headers['x-pilotlight-warm'] === this.deps.warmToken;
    const state = warm ? 'ready' : lifecycle.state;
    if (state !== 'ready' && !(state === 'draining' && this.#accepting)) {
      this.#reject(req, res, span, started, requestId, NOT_SERVING[state as Exclude<State, 'ready'>]());
      return;
    }
    if (state === 'draining') res.setHeader('connection', 'close');
    let timeout = config.execTimeout;
    const asked = req.headers['x-timeout'] as string | undefined;
    if (asked !== undefined) {
      let askedMs: number;
      try {
        askedMs = parseDuration(asked);
      } catch {
        this.#reject(req, res, span, started, requestId, new WatchdogError('PILOTLIGHT_BAD_TIMEOUT', `X-Timeout "${asked}" is not a duration such as 500ms or 5s`));
        return;
      }
      if (askedMs > 0 && (timeout === 0 || askedMs < timeout)) timeout = askedMs;
    }
    const declared = req.headers['content-length'];
    if (config.maxBodySize > 0 && declared !== undefined && Number(declared) > config.maxBodySize) {
      this.#reject(req, res, span, started, requestId, bodyTooLarge(config.maxBodySize));
      return;
    }
    // The server hands `Expect: 100-continue` requests here too (checkContinue) and leaves the
    // 100 to us: sent only now, past the checks that refuse a request without reading its body.
    if (req.headers.expect !== undefined) res.writeContinue();
    if (!warm) this.deps.estimator.arrival();
    this.#active += 1;
    if (admission.tryEnter()) {
      this.#run(req, res, requestId, timeout, span, started, started, warm);
      return;
    }
    this.deps.saturation();
    const ticket = admission.enqueue();
    const cancel = () => {
      ticket.cancel();
    };
    res.once('close', cancel);
    ticket.admitted.then(
      () => {
        res.off('close', cancel);
        this.deps.metrics.queueWait((performance.now() - started) / 1000);
        if (res.destroyed) {
          admission.leave();
          this.#finish();
        } else {
          this.#run(req, res, requestId, timeout, span, started, performance.now(), warm);
        }
      },
      (error: WatchdogError) => {
        this.deps.metrics.queueWait((performance.now() - started) / 1000);
        this.#reject(req, res, span, started, requestId, error);
        this.#finish();
      },
    );
  };

  /** Answers a request the watchdog refuses itself, and counts it. */
  #reject(req: IncomingMessage, res: ServerResponse, span: ServerSpan, started: number, requestId: string, error: WatchdogError): void {
    answerError(req, res, requestId, span.context.traceparent, error);
    discardUnreadBody(req);
    this.deps.metrics.rejected(error.code);
    this.#record(req, res, span, started);
  }

  #record(req: IncomingMessage, res: ServerResponse, span: ServerSpan, started: number, now = performance.now()): void {
    const status = outcome(res);
    this.deps.metrics.request(status, req.method ?? 'GET', (now - started) / 1000);
    span.end(status);
  }

  #finish(): void {
    this.#active -= 1;
    if (this.#active === 0 && this.#onIdle) {
      this.#onIdle();
      this.#onIdle = undefined;
    }
  }

  #run(
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    timeout: number,
    span: ServerSpan,
    arrived: number,
    /** When it left the queue (its arrival, if it never queued). */
    started: number,
    warm: boolean,
  ): void {
    const { runner, admission, config, logger, metrics, estimator } = this.deps;
    const invocation = new Invocation(requestId, span.context, timeout > 0 ? Date.now() + timeout : undefined, logger, (error) => {
      metrics.rejected(error.code);
      if (error.code === 'PILOTLIGHT_WRITE_TIMEOUT') res.destroy();
      else answerError(req, res, requestId, span.context.traceparent, error);
      invocation.log().warn({ code: error.code }, error.message);
    });
    // With an exec timeout, write_timeout is at least as long (config enforces it), so one timer
    // covers both; without one, the write timeout alone bounds the response.
    let timer: NodeJS.Timeout | undefined;
    if (timeout > 0) {
      timer = setTimeout(
        () => invocation.abort(new WatchdogError('PILOTLIGHT_EXEC_TIMEOUT', `the function did not answer within ${timeout} ms`)),
        timeout,
      );
    } else if (config.writeTimeout > 0) {
      timer = setTimeout(
        () => invocation.abort(new WatchdogError('PILOTLIGHT_WRITE_TIMEOUT', `the response was not written within ${config.writeTimeout} ms`)),
        config.writeTimeout,
      );
    }
    const onClose = () => {
      // The client went away before the response was complete: stop the work, answer nobody.
      if (!res.writableFinished) invocation.cancel(new Error('client closed the connection'));
    };
    res.on('close', onClose);
    const settle = () => {
      clearTimeout(timer);
      res.off('close', onClose);
      discardUnreadBody(req);
      admission.leave();
      const now = performance.now();
      if (!warm) {
        if (!invocation.aborted) estimator.completion((now - started) / 1000);
        this.#record(req, res, span, arrived, now);
      }
      if (config.accessLog && !warm) {
        invocation.log().info(
          { method: req.method, path: req.url, status: outcome(res), durationMs: Math.round(now - arrived) },
          'request',
        );
      }
      this.#finish();
    };
    runner.handle(req, res, invocation).then(settle, (error: unknown) => {
      if (!invocation.aborted) {
        const known = error instanceof WatchdogError ? error : new WatchdogError('PILOTLIGHT_INTERNAL', 'the watchdog failed to serve this request');
        if (known !== error) invocation.log().error({ err: error, code: known.code }, 'request failed inside the watchdog');
        // A platform-side failure (the function exited non-zero, could not be spawned, the
        // upstream broke) is an operator's business too, not only the client's.
        else if (known.status >= 500) invocation.log().warn({ code: known.code }, known.message);
        metrics.rejected(known.code);
        answerError(req, res, requestId, span.context.traceparent, known);
      }
      settle();
    });
  }
}
