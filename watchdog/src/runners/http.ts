import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Invocation } from '../invocation.js';
import type { ChildOutputOptions } from '../log/child-output.js';
import type { Spawn } from '../process/group.js';
import { Supervisor } from '../process/supervisor.js';
import type { UpstreamTarget } from '../proxy/connection.js';
import { Upstream } from '../proxy/upstream.js';
import { type Runner, type RunnerEvents, SLOW_START_WARNING } from './runner.js';
import { WatchdogError } from '../errors.js';

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
  readonly upstreamKeepAlive: number;
  readonly events: RunnerEvents;
}

/** Host and port of an `upstream_url` (already validated as http:// or https://). */
function upstreamTarget(url: string): UpstreamTarget {
  const { protocol, hostname, port } = new URL(url);
  const tls = protocol === 'https:';
  // IPv6 literals come bracketed, as a URL writes them; a socket wants them bare.
  const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  return { host, port: port === '' ? (tls ? 443 : 80) : Number(port), tls };
}

/** Consecutive failed health probes before the upstream counts as unhealthy. */
const UNHEALTHY_AFTER = 3;

/**
 * `http` mode: supervises one long-lived HTTP server and proxies every request to it.
 */
export class HttpRunner implements Runner {
  readonly #upstream: Upstream;
  readonly #target: UpstreamTarget;
  readonly #supervisor: Supervisor | undefined;
  #failedProbes = 0;
  #healthTimer: NodeJS.Timeout | undefined;
  /** Why the last probe failed, for the log. */
  #probeFailure = '';

  constructor(private readonly options: HttpRunnerOptions) {
    this.#target = upstreamTarget(options.upstreamUrl);
    this.#upstream = new Upstream({
      target: this.#target,
      // of-watchdog sends `upstream_url` + the request URI: a path there is a prefix.
      pathPrefix: new URL(options.upstreamUrl).pathname.replace(/\/$/, ''),
      maxBodySize: options.maxBodySize,
      bufferRequestBody: options.bufferRequestBody,
      keepAlive: options.upstreamKeepAlive,
      blame: async () => {
        const supervisor = this.#supervisor;
        return supervisor && (await supervisor.exitsWithin(200)) ? supervisor.lastExit : undefined;
      },
    });
    if (options.argv) {
      this.#supervisor = new Supervisor({
        ...options,
        argv: options.argv,
        controlChannel: false,
        waitUntilUp: (child) => this.#waitUntilAnswering(child),
        onUp: (seconds) => {
          options.events.started(seconds);
          options.events.ready();
        },
        onRestart: () => options.events.restarted(),
        onDown: (reason) => {
          this.#upstream.abortAll(() => new WatchdogError('PILOTLIGHT_UPSTREAM_EXITED', `${reason} while the request was in flight`));
          options.events.down(reason);
        },
        onFailed: (reason) => options.events.failed(reason),
      });
    }
  }

  get healthy(): boolean {
    return (this.#supervisor?.answering ?? true) && this.#failedProbes < UNHEALTHY_AFTER;
  }

  async start(): Promise<void> {
    if (this.#supervisor) {
      await this.#ensurePortFree();
      await this.#supervisor.start();
    } else {
      await this.#pollUntilAnswering(() => true);
      this.options.events.ready();
    }
    this.#healthTimer = setInterval(() => void this.#checkHealth(), this.options.healthcheckInterval).unref();
  }

  /**
   * Refuses to start the function when another process already listens where it is to listen:
   * the function could not bind there, and the probes, which take any answer, would find that
   * other server and send it the function's requests. An address that is not this machine's
   * leaves nothing to check.
   */
  async #ensurePortFree(): Promise<void> {
    const { upstreamUrl } = this.options;
    const target = this.#target;
    if ('path' in target) return;
    const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      const server = createServer();
      server.once('error', resolve);
      server.listen({ port: target.port, host: target.host, exclusive: true }, () => server.close(() => resolve(undefined)));
    });
    if (error?.code !== 'EADDRINUSE') return;
    throw new WatchdogError(
      'PILOTLIGHT_START_FAILED',
      `upstream_url ${upstreamUrl}: another process already listens on port ${target.port}, so the function could not, and its requests would go to that process; ` +
        'stop it, or set PILOTLIGHT_UPSTREAM_URL to the port the function listens on',
    );
  }

  /**
   * Probes until the process answers or exits. An arbitrary HTTP server has no handshake to send,
   * so this polls, starting at 5 ms so a fast server is seen within milliseconds.
   */
  #waitUntilAnswering(child: ChildProcess): Promise<boolean> {
    // A process never spawned has no pid and never exits: nothing to wait for.
    return this.#pollUntilAnswering(() => child.pid !== undefined && child.exitCode === null && child.signalCode === null);
  }

  /** Probes while `alive()`, saying in the log what is wrong when it takes long. */
  async #pollUntilAnswering(alive: () => boolean): Promise<boolean> {
    const started = performance.now();
    let warnAt: number = SLOW_START_WARNING.firstMs;
    let delay = 5;
    while (alive()) {
      if (await this.#probe()) return true;
      const waited = performance.now() - started;
      if (waited >= warnAt) {
        warnAt += SLOW_START_WARNING.everyMs;
        const { upstreamUrl, readyPath } = this.options;
        this.options.logger.warn(
          { code: 'PILOTLIGHT_UPSTREAM_NOT_ANSWERING', upstreamUrl, readyPath, waitedMs: Math.round(waited), last: this.#probeFailure },
          `the function has not answered on ${upstreamUrl} for ${Math.round(waited / 1000)} s (last probe: ${this.#probeFailure}); ` +
            'check that it listens on the port upstream_url names' +
            (readyPath ? ` and that ${readyPath} answers 2xx once it is ready` : ''),
        );
      }
      await sleep(delay);
      delay = Math.min(delay * 1.5, 100);
    }
    return false;
  }

  async #checkHealth(): Promise<void> {
    if (this.#supervisor && !this.#supervisor.answering) return;
    const ok = await this.#probe();
    const wasHealthy = this.healthy;
    this.#failedProbes = ok ? 0 : this.#failedProbes + 1;
    if (wasHealthy !== this.healthy) {
      if (ok) this.options.logger.info({ healthy: true }, 'upstream answers probes again');
      else this.options.logger.warn({ healthy: false, code: 'PILOTLIGHT_UPSTREAM_UNHEALTHY', last: this.#probeFailure }, `upstream stopped answering probes (last: ${this.#probeFailure})`);
    }
  }

  /** One readiness probe: `GET ready_path` must be 2xx; without it any answer to `OPTIONS /` will do. */
  async #probe(): Promise<boolean> {
    const path = this.options.readyPath;
    try {
      const status = await this.#upstream.probe(path ? 'GET' : 'OPTIONS', path ?? '/');
      if (!path || (status >= 200 && status < 300)) return true;
      this.#probeFailure = `GET ${path} answered ${status}`;
      return false;
    } catch (error) {
      this.#probeFailure = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      return false;
    }
  }

  handle(req: IncomingMessage, res: ServerResponse, invocation: Invocation): Promise<void> {
    return this.#upstream.forward(req, res, invocation);
  }

  async stop(graceMs: number): Promise<void> {
    clearInterval(this.#healthTimer);
    await this.#supervisor?.stop(graceMs);
    await this.#upstream.close();
  }
}
