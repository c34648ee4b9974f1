import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import type { Logger } from 'pino';
import { Pool } from 'undici';
import { WatchdogError } from '../errors.js';
import type { Invocation } from '../invocation.js';
import type { ChildOutputOptions } from '../log/child-output.js';
import type { Spawn } from '../process/group.js';
import { Supervisor } from '../process/supervisor.js';
import { limitBody } from '../proxy/body-limit.js';
import { hasBody, stripResponseHeaders, upstreamRequestHeaders } from '../proxy/headers.js';
import type { Runner, RunnerEvents } from './runner.js';

/** Everything the `http` runner needs. */
export interface HttpRunnerOptions {
  readonly upstreamUrl: string;
  /** The process to supervise; absent when the upstream runs on its own (a sidecar). */
  readonly argv: readonly string[] | undefined;
  readonly env: NodeJS.ProcessEnv;
  readonly spawn: Spawn;
  readonly logger: Logger;
  readonly output: Omit<ChildOutputOptions, 'stream' | 'logger'>;
  readonly maxRestarts: number;
  readonly readyPath: string | undefined;
  readonly healthcheckInterval: number;
  readonly maxBodySize: number;
  readonly bufferRequestBody: boolean;
  readonly events: RunnerEvents;
}

/** Errors that mean the connection broke, as opposed to the request being refused. */
const CONNECTION_ERRORS = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
/** Methods safe to send twice when a reused keep-alive connection turns out to be closed. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE', 'PUT']);
/** Consecutive failed health probes before the upstream counts as unhealthy. */
const UNHEALTHY_AFTER = 3;

function errorCode(error: unknown): string | undefined {
  const err = error as { code?: string; cause?: { code?: string } };
  return err?.cause?.code ?? err?.code;
}

/**
 * `http` mode: supervises one long-lived HTTP server and proxies every request to it with undici,
 * streaming bodies both ways.
 */
export class HttpRunner implements Runner {
  readonly #pool: Pool;
  readonly #supervisor: Supervisor | undefined;
  readonly #inflight = new Set<Invocation>();
  #failedProbes = 0;
  #healthTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: HttpRunnerOptions) {
    this.#pool = new Pool(options.upstreamUrl, {
      // Idle upstream connections are dropped well before a typical server's keep-alive timeout
      // (Node's is 5 s) so the watchdog never sends on a socket the server is closing. A server's
      // `Keep-Alive: timeout=N` hint shortens this further.
      keepAliveTimeout: 2_000,
      keepAliveMaxTimeout: 4_000,
      keepAliveTimeoutThreshold: 1_000,
      // The exec timeout governs how long a request may take; undici's own limits would cut
      // long streams (Server-Sent Events) that the exec timeout allows.
      headersTimeout: 0,
      bodyTimeout: 0,
      connectTimeout: 2_000,
    });
    if (options.argv) {
      const events: RunnerEvents = {
        ...options.events,
        down: (reason) => {
          for (const invocation of this.#inflight) {
            invocation.abort(new WatchdogError('PILOTLIGHT_UPSTREAM_EXITED', `${reason} while the request was in flight`));
          }
          options.events.down(reason);
        },
      };
      this.#supervisor = new Supervisor({ ...options, argv: options.argv, events, probe: () => this.#probe() });
    }
  }

  get healthy(): boolean {
    return (this.#supervisor?.answering ?? true) && this.#failedProbes < UNHEALTHY_AFTER;
  }

  async start(): Promise<void> {
    if (this.#supervisor) await this.#supervisor.start();
    else await this.#waitForExternalUpstream();
    this.#healthTimer = setInterval(() => void this.#checkHealth(), this.options.healthcheckInterval).unref();
  }

  async #waitForExternalUpstream(): Promise<void> {
    while (!(await this.#probe().catch(() => false))) await new Promise((r) => setTimeout(r, 50));
    this.options.events.up();
  }

  async #checkHealth(): Promise<void> {
    if (this.#supervisor && !this.#supervisor.answering) return;
    const ok = await this.#probe().catch(() => false);
    const wasHealthy = this.healthy;
    this.#failedProbes = ok ? 0 : this.#failedProbes + 1;
    if (wasHealthy !== this.healthy) {
      this.options.logger.warn({ healthy: this.healthy }, ok ? 'upstream answers probes again' : 'upstream stopped answering probes');
    }
  }

  /** One readiness probe: `GET ready_path` must be 2xx; without it any answer to `OPTIONS /` will do. */
  async #probe(): Promise<boolean> {
    const path = this.options.readyPath;
    const { statusCode, body } = await this.#pool.request({
      method: path ? 'GET' : 'OPTIONS',
      path: path ?? '/',
      headersTimeout: 2_000,
      bodyTimeout: 2_000,
    });
    await body.dump();
    return path ? statusCode >= 200 && statusCode < 300 : true;
  }

  async handle(req: IncomingMessage, res: ServerResponse, invocation: Invocation): Promise<void> {
    const headers = upstreamRequestHeaders(req, invocation.id);
    let body: Readable | Buffer | null = hasBody(req) ? limitBody(req, this.options.maxBodySize) : null;
    if (body && this.options.bufferRequestBody) {
      body = await buffer(body);
      if (req.headers['content-length'] === undefined) headers.push('content-length', String(body.length));
    }
    this.#inflight.add(invocation);
    try {
      await this.#forward(req, res, invocation, headers, body, true);
    } finally {
      this.#inflight.delete(invocation);
    }
  }

  async #forward(
    req: IncomingMessage,
    res: ServerResponse,
    invocation: Invocation,
    headers: string[],
    body: Readable | Buffer | null,
    mayRetry: boolean,
  ): Promise<void> {
    const { signal } = invocation;
    try {
      await this.#pool.stream(
        { path: req.url as string, method: req.method as 'GET', headers, body, signal },
        ({ statusCode, headers: upstreamHeaders }) => {
          res.writeHead(statusCode, stripResponseHeaders(upstreamHeaders));
          // Server-Sent Events must reach the client event by event, starting with the headers.
          if (String(upstreamHeaders['content-type']).startsWith('text/event-stream')) res.flushHeaders();
          return res;
        },
      );
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof WatchdogError) throw error;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const code = errorCode(error);
      if (mayRetry && body === null && code !== undefined && CONNECTION_ERRORS.has(code) && IDEMPOTENT.has(req.method ?? '')) {
        invocation.log().debug({ code }, 'upstream connection was closed under the request; retrying once');
        return this.#forward(req, res, invocation, headers, body, false);
      }
      throw await this.#explain(error, code);
    }
  }

  /** Names the cause of a failed upstream call, waiting briefly for a dying process to be reaped. */
  async #explain(error: unknown, code: string | undefined): Promise<WatchdogError> {
    if (this.#supervisor && code !== undefined && CONNECTION_ERRORS.has(code)) {
      if (await this.#supervisor.exitsWithin(200)) {
        return new WatchdogError('PILOTLIGHT_UPSTREAM_EXITED', `${this.#supervisor.lastExit} while the request was in flight`);
      }
    }
    const reason = code ?? (error instanceof Error ? error.message : String(error));
    return new WatchdogError('PILOTLIGHT_UPSTREAM_UNAVAILABLE', `upstream ${this.options.upstreamUrl} failed: ${reason}`);
  }

  async stop(graceMs: number): Promise<void> {
    clearInterval(this.#healthTimer);
    await this.#supervisor?.stop(graceMs);
    await this.#pool.destroy();
  }
}
