import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { Pool } from 'undici';
import { WatchdogError } from '../errors.js';
import type { Invocation } from '../invocation.js';
import { limitBody } from './body-limit.js';
import { hasBody, responseHead, upstreamRequestHeaders } from './headers.js';

/** How to reach an upstream and what to do with request bodies. */
export interface UpstreamOptions {
  /** `http://host:port`, or `http://localhost` with `socketPath` for a Unix socket. */
  readonly origin: string;
  readonly socketPath?: string;
  readonly maxBodySize: number;
  readonly bufferRequestBody: boolean;
  /** Idle time after which a kept-alive upstream connection is dropped, ms. */
  readonly keepAlive: number;
  /** Extra request headers (the deadline for runtimes), computed per request. */
  readonly extraHeaders?: (invocation: Invocation, headers: string[]) => void;
  /**
   * Asked when the connection broke: the reason, if the upstream's process died (then the error is
   * `PILOTLIGHT_UPSTREAM_EXITED`), or undefined.
   */
  readonly blame: () => Promise<string | undefined>;
}

/** Errors that mean the connection broke, as opposed to the request being refused. */
const CONNECTION_ERRORS = new Set(['ECONNRESET', 'ECONNREFUSED', 'ENOENT', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
/** Methods safe to send twice when a reused keep-alive connection turns out to be closed. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE', 'PUT']);

function errorCode(error: unknown): string | undefined {
  const err = error as { code?: string; cause?: { code?: string } };
  return err?.cause?.code ?? err?.code;
}

/**
 * The proxy to one upstream over undici: keep-alive connections, bodies streamed both ways
 * (or the request body buffered when asked), hop-by-hop headers dropped, X-Forwarded-* set.
 */
export class Upstream {
  readonly #pool: Pool;
  readonly #inflight = new Set<Invocation>();

  constructor(private readonly options: UpstreamOptions) {
    this.#pool = new Pool(options.origin, {
      socketPath: options.socketPath,
      // Idle upstream connections are dropped well before a typical server's keep-alive timeout
      // (Node's is 5 s) so the watchdog never sends on a socket the server is closing. A server's
      // `Keep-Alive: timeout=N` hint shortens this further, never lengthens it.
      keepAliveTimeout: options.keepAlive,
      keepAliveMaxTimeout: options.keepAlive,
      keepAliveTimeoutThreshold: 1_000,
      // The exec timeout governs how long a request may take; undici's own limits would cut
      // long streams (Server-Sent Events) that the exec timeout allows.
      headersTimeout: 0,
      bodyTimeout: 0,
      connectTimeout: 2_000,
    });
  }

  /** Sends `method path` and reports the status, reading and dropping the body. */
  async probe(method: 'GET' | 'OPTIONS', path: string): Promise<number> {
    const { statusCode, body } = await this.#pool.request({ method, path, headersTimeout: 2_000, bodyTimeout: 2_000 });
    await body.dump();
    return statusCode;
  }

  /** Ends every request in flight with `error` (the upstream's process died under them). */
  abortAll(error: () => WatchdogError): void {
    for (const invocation of this.#inflight) invocation.abort(error());
  }

  /** Proxies one request; rejects with a `WatchdogError` when the watchdog must answer. */
  async forward(req: IncomingMessage, res: ServerResponse, invocation: Invocation): Promise<void> {
    this.#inflight.add(invocation);
    try {
      await this.#forward(req, res, invocation);
    } finally {
      this.#inflight.delete(invocation);
    }
  }

  async #forward(req: IncomingMessage, res: ServerResponse, invocation: Invocation): Promise<void> {
    const headers = upstreamRequestHeaders(req, invocation.id, invocation.trace);
    this.options.extraHeaders?.(invocation, headers);
    let body: Readable | Buffer | null = hasBody(req) ? limitBody(req, this.options.maxBodySize) : null;
    if (body && this.options.bufferRequestBody) {
      body = await buffer(body);
      if (req.headers['content-length'] === undefined) headers.push('content-length', String(body.length));
    }
    await this.#send(req, res, invocation, headers, body, true);
  }

  async #send(
    req: IncomingMessage,
    res: ServerResponse,
    invocation: Invocation,
    headers: string[],
    body: Readable | Buffer | null,
    mayRetry: boolean,
  ): Promise<void> {
    const { signal } = invocation;
    try {
      await this.#dispatch(req, res, signal, headers, body);
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof WatchdogError) throw error;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const code = errorCode(error);
      const broken = code !== undefined && CONNECTION_ERRORS.has(code);
      if (mayRetry && broken && body === null && IDEMPOTENT.has(req.method ?? '')) {
        invocation.log().debug({ code }, 'upstream connection was closed under the request; retrying once');
        return this.#send(req, res, invocation, headers, body, false);
      }
      const exited = broken ? await this.options.blame() : undefined;
      if (exited !== undefined) throw new WatchdogError('PILOTLIGHT_UPSTREAM_EXITED', `${exited} while the request was in flight`);
      const reason = code ?? (error instanceof Error ? error.message : String(error));
      throw new WatchdogError('PILOTLIGHT_UPSTREAM_UNAVAILABLE', `upstream ${this.options.socketPath ?? this.options.origin} failed: ${reason}`);
    }
  }

  /**
   * One exchange with the upstream through undici's dispatcher with a handler of our own: the
   * response head goes straight to `writeHead` and each body chunk to `res.write`, with
   * backpressure through `resume`. Measured against `pool.stream`, this halves the proxy's CPU
   * per request (docs/benchmarks.md), which is most of what the watchdog costs.
   */
  #dispatch(req: IncomingMessage, res: ServerResponse, signal: AbortSignal, headers: string[], body: Readable | Buffer | null): Promise<void> {
    return new Promise((resolve, reject) => {
      let abortUpstream: ((reason?: Error) => void) | undefined;
      let resume: (() => void) | undefined;
      const onAbort = () => abortUpstream?.(signal.reason as Error);
      const onDrain = () => resume?.();
      signal.addEventListener('abort', onAbort, { once: true });
      const finish = (error?: Error) => {
        signal.removeEventListener('abort', onAbort);
        res.off('drain', onDrain);
        if (error) reject(error);
        else resolve();
      };
      this.#pool.dispatch(
        { path: req.url as string, method: req.method as 'GET', headers, body },
        {
          onConnect: (abort) => {
            if (signal.aborted) abort(signal.reason as Error);
            else abortUpstream = abort;
          },
          onHeaders: (statusCode, rawHeaders, resumeUpstream) => {
            // 1xx heads are informational; the final one follows.
            if (statusCode < 200) return true;
            if (signal.aborted) return false;
            const head = responseHead(rawHeaders as unknown as Buffer[]);
            res.writeHead(statusCode, head.headers);
            // Server-Sent Events must reach the client event by event, starting with the headers.
            if (head.eventStream) res.flushHeaders();
            resume = resumeUpstream;
            res.on('drain', onDrain);
            return true;
          },
          onData: (chunk) => res.write(chunk),
          onComplete: () => {
            res.end();
            finish();
          },
          onError: (error) => finish(error),
        },
      );
    });
  }

  /** Closes every connection. */
  close(): Promise<void> {
    return this.#pool.destroy();
  }
}
