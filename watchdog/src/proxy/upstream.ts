import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { WatchdogError } from '../errors.js';
import type { Invocation } from '../invocation.js';
import { List } from '../list.js';
import { limitBody } from './body-limit.js';
import type { OutgoingRequest, UpstreamTarget } from './connection.js';
import { hasBody, responseHead, upstreamRequestHeaders } from './headers.js';
import { ConnectionPool } from './pool.js';
import { ResponseParseError } from './response-parser.js';

/** How to reach an upstream and what to do with request bodies. */
export interface UpstreamOptions {
  /** A Unix socket path, or TCP host and port. */
  readonly target: UpstreamTarget;
  readonly maxBodySize: number;
  readonly bufferRequestBody: boolean;
  /** Idle time after which a kept-alive upstream connection is dropped, ms. */
  readonly keepAlive: number;
  /** Put in front of every request's path (the path of `upstream_url`, as of-watchdog does). */
  readonly pathPrefix?: string;
  /** Extra request headers (the deadline for runtimes), computed per request. */
  readonly extraHeaders?: (invocation: Invocation, headers: string[]) => void;
  /**
   * Asked when the connection broke: the reason, if the upstream's process died (then the error is
   * `PILOTLIGHT_UPSTREAM_EXITED`), or undefined.
   */
  readonly blame: () => Promise<string | undefined>;
}

/** Errors that mean the connection broke, as opposed to the request being refused. */
const CONNECTION_ERRORS = new Set(['ECONNRESET', 'ECONNREFUSED', 'ENOENT', 'EPIPE', 'ETIMEDOUT', 'UPSTREAM_CLOSED']);
/** Methods safe to send twice when a reused keep-alive connection turns out to be closed. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE', 'PUT']);

function errorCode(error: unknown): string | undefined {
  return (error as { code?: string })?.code;
}

/**
 * The proxy to one upstream, over the watchdog's own HTTP/1.1 connections (proxy/connection.ts):
 * keep-alive, bodies streamed both ways (or the request body buffered when asked), hop-by-hop
 * headers dropped, X-Forwarded-* set.
 */
export class Upstream {
  readonly #pool: ConnectionPool;
  /** A list, not a Set: see list.ts for what a Set per request costs the GC. */
  readonly #inflight = new List<Invocation>();

  constructor(private readonly options: UpstreamOptions) {
    // Idle upstream connections are dropped well before a typical server's keep-alive timeout
    // (Node's is 5 s) so the watchdog never sends on a socket the server is closing. A server's
    // `Keep-Alive: timeout=N` hint shortens this further, never lengthens it. No read timeout of
    // its own: the exec timeout governs how long a request (or a Server-Sent Events stream) may take.
    this.#pool = new ConnectionPool(options.target, options.keepAlive);
  }

  /** Sends `method path` within 2 s and reports the status, reading and dropping the body. */
  probe(method: 'GET' | 'OPTIONS', path: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const connection = this.#pool.acquire();
      let status = 0;
      const timer = setTimeout(() => connection.abort(new Error('probe timed out')), 2_000);
      connection.send(
        { method, path, headers: [], body: null },
        {
          onHead: (head) => {
            status = head.status;
          },
          onBody: () => true,
          onComplete: () => {
            clearTimeout(timer);
            resolve(status);
          },
          onError: (error) => {
            clearTimeout(timer);
            reject(error);
          },
        },
      );
    });
  }

  /** Ends every request in flight with `error` (the upstream's process died under them). */
  abortAll(error: () => WatchdogError): void {
    for (const invocation of this.#inflight.values()) invocation.abort(error());
  }

  /**
   * Proxies one request; rejects with a `WatchdogError` when the watchdog must answer. Inside,
   * callbacks rather than promise layers: this is the path every request takes, and each layer
   * is microtasks on the one thread.
   */
  forward(req: IncomingMessage, res: ServerResponse, invocation: Invocation): Promise<void> {
    return new Promise((resolve, reject) => {
      const entry = this.#inflight.push(invocation);
      const done = (error?: unknown) => {
        this.#inflight.remove(entry);
        invocation.onAbort(undefined);
        if (error === undefined) resolve();
        else reject(error);
      };
      const send = (request: OutgoingRequest, mayRetry: boolean): void =>
        this.#exchange(res, invocation, request, (error, retryable) => {
          if (error === undefined) done();
          else this.#recover(res, invocation, request, mayRetry && retryable, error).then((retry) => (retry ? send(request, false) : done()), done);
        });
      try {
        const headers = upstreamRequestHeaders(req, invocation.id, invocation.trace);
        this.options.extraHeaders?.(invocation, headers);
        const body = hasBody(req) ? limitBody(req, this.options.maxBodySize) : null;
        const path = this.options.pathPrefix ? this.options.pathPrefix + (req.url as string) : (req.url as string);
        const request = (body: Readable | Buffer | null): OutgoingRequest => ({ method: req.method as string, path, headers, body });
        if (body && this.options.bufferRequestBody) buffer(body).then((whole) => send(request(whole), true), done);
        else send(request(body), true);
      } catch (error) {
        done(error);
      }
    });
  }

  /**
   * After a failed exchange: true to retry it once, false when nothing is left to answer, or a
   * rejection with the `WatchdogError` to answer with. Only an exchange on a reused connection
   * that got no response head may be retried: that one can have met the upstream closing it
   * while idle, but a fresh connection failing, or a response cut short, is the upstream's
   * answer, and sending again would only double it.
   */
  async #recover(res: ServerResponse, invocation: Invocation, request: OutgoingRequest, mayRetry: boolean, error: Error): Promise<boolean> {
    if (invocation.aborted) return false;
    if (error instanceof WatchdogError) throw error;
    if (res.headersSent) {
      res.destroy();
      return false;
    }
    const code = errorCode(error);
    const broken = code !== undefined && CONNECTION_ERRORS.has(code);
    if (mayRetry && broken && request.body === null && IDEMPOTENT.has(request.method)) {
      invocation.log().debug({ code }, 'upstream connection was closed under the request; retrying once');
      return true;
    }
    const exited = broken ? await this.options.blame() : undefined;
    if (exited !== undefined) throw new WatchdogError('PILOTLIGHT_UPSTREAM_EXITED', `${exited} while the request was in flight`);
    if (error instanceof ResponseParseError) throw new WatchdogError('PILOTLIGHT_UPSTREAM_BAD_RESPONSE', `upstream ${this.#describe()} sent an invalid response: ${error.message}`);
    // A system error says enough by its code (ECONNRESET); the parser's own says what it saw.
    const reason = code === 'UPSTREAM_CLOSED' ? error.message : (code ?? error.message);
    throw new WatchdogError('PILOTLIGHT_UPSTREAM_UNAVAILABLE', `upstream ${this.#describe()} failed: ${reason}`);
  }

  /**
   * One exchange on a pooled connection: the response head goes to `writeHead` with the first
   * body chunk (at once for Server-Sent Events) and each chunk to `res.write`, with backpressure
   * both ways. `done` gets the error, if any, and whether the exchange may be sent again: only
   * when it ran on a connection that had carried one before and nothing of a response came back.
   */
  #exchange(res: ServerResponse, invocation: Invocation, request: OutgoingRequest, done: (error: Error | undefined, retryable: boolean) => void): void {
    const connection = this.#pool.acquire();
    const reused = connection.served > 0;
    // The head waits for the body: until a byte of it is written nothing has reached the client,
    // so an upstream that dies between its head and its body is still answered with a 502
    // rather than a connection closed without a word.
    let status = 0; // stays 0 until a response head came
    let pending: string[] | undefined;
    const writeHead = (headers: string[]): void => {
      pending = undefined;
      try {
        // One flat array and no setHeader before it: writeHead's fast path.
        res.writeHead(status, headers);
      } catch (error) {
        // Node validates names and values as it writes them (a control character, a name
        // that is not a token); one it refuses is the upstream's malformed response.
        throw new ResponseParseError((error as Error).message);
      }
    };
    let onDrain: (() => void) | undefined;
    let waiting = false;
    invocation.onAbort((reason) => connection.abort(reason));
    connection.send(request, {
      onHead: (head) => {
        status = head.status;
        const out = responseHead(head.headers, invocation.responseHeaders);
        if (out.eventStream) {
          // Server-Sent Events must reach the client event by event, starting with the headers.
          writeHead(out.headers);
          res.flushHeaders();
        } else {
          pending = out.headers;
        }
      },
      onBody: (chunk, last) => {
        if (pending) writeHead(pending);
        // The last chunk goes out with the end of the response: one write to the client, not two.
        if (last) {
          res.end(chunk);
          return true;
        }
        if (res.write(chunk)) return true;
        // Listen for drain only when the client actually pushes back, and once: the rest of the
        // socket read being parsed keeps coming until the pause takes effect.
        if (!waiting) {
          waiting = true;
          onDrain ??= () => {
            waiting = false;
            connection.resume();
          };
          res.once('drain', onDrain);
        }
        return false;
      },
      onComplete: () => {
        if (onDrain) res.off('drain', onDrain);
        if (pending) {
          // A response without a body. The connection is back in the pool by now, so a refused
          // head ends the exchange here rather than as a throw into the connection.
          try {
            writeHead(pending);
          } catch (error) {
            done(error as Error, false);
            return;
          }
        }
        if (!res.writableEnded) res.end();
        done(undefined, false);
      },
      onError: (error) => {
        if (onDrain) res.off('drain', onDrain);
        done(error, reused && status === 0);
      },
    });
  }

  #describe(): string {
    const { target } = this.options;
    return 'path' in target ? target.path : `${target.host}:${target.port}`;
  }

  /** Closes every connection. */
  close(): Promise<void> {
    this.#pool.close();
    return Promise.resolve();
  }
}
