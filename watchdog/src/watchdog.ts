import { randomUUID } from 'node:crypto';
import { createServer, maxHeaderSize, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Admission } from './admission.js';
import type { Config } from './config/settings.js';
import { createControl } from './control/routes.js';
import { createSpecializeHandler, type Identity, warmSpecialization } from './control/specialize.js';
import { rawErrorResponse, WatchdogError } from './errors.js';
import { Lifecycle } from './lifecycle.js';
import { Listener } from './listener.js';
import { maintainLockFile } from './lock-file.js';
import type { Spawn } from './process/group.js';
import { createRunner } from './runners/create.js';
import type { Runner } from './runners/runner.js';
import { RuntimeRunner } from './runners/runtime.js';
import { Metrics } from './metrics.js';
import { ScaleHints, postHint } from './scale/hints.js';
import type { SendHint } from './scale/publisher.js';
import { Tracing } from './tracing.js';

/** The collaborators a watchdog runs with; the entrypoint passes the real ones. */
export interface WatchdogDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly spawn: Spawn;
  /** Environment for the function's processes. */
  readonly env: NodeJS.ProcessEnv;
  /** Writes a line to the log destination unchanged (child output with `prefix_logs` off). */
  readonly writeRaw: (text: string) => void;
  readonly version: string;
  /** Delivers a scale hint; defaults to a POST with undici. */
  readonly sendHint?: SendHint;
  /**
   * What the instance knows about its function, shared with whoever else shows the name (the
   * logger); defaults to the configured name.
   */
  readonly identity?: Identity;
}

/** Listens, or fails naming the setting behind the port: a taken port is a common start failure. */
function listen(server: Server, port: number, host: string | undefined, setting: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (error: NodeJS.ErrnoException) => {
      if (host !== undefined && (error.code === 'ENOTFOUND' || error.code === 'EADDRNOTAVAIL' || error.code === 'EAI_AGAIN')) {
        reject(new Error(`cannot listen on host ${host} (PILOTLIGHT_HOST): ${error.code}; set it to an address of this machine, or unset it for every address`));
        return;
      }
      const fix = error.code === 'EADDRINUSE' ? ': another process has it; stop that one or set another port' : '';
      reject(new Error(`cannot listen on port ${port} of ${host ?? 'every address'} (${setting}): ${error.code ?? error.message}${fix}`));
    };
    server.once('error', fail);
    server.listen({ port, host }, () => {
      server.off('error', fail);
      resolve();
    });
  });
}

/** What the client hears for an error on its connection outside any request. */
function clientErrorOf(error: NodeJS.ErrnoException): WatchdogError {
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return new WatchdogError('PILOTLIGHT_READ_TIMEOUT', 'the request was not received in full within read_timeout');
  }
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    return new WatchdogError('PILOTLIGHT_HEADERS_TOO_LARGE', `the request line and headers are larger than the ${maxHeaderSize} bytes allowed`);
  }
  const reason = (error as { reason?: string }).reason ?? error.message;
  return new WatchdogError('PILOTLIGHT_BAD_REQUEST', `the request is not valid HTTP/1.1: ${reason}`);
}

/**
 * One watchdog: the function port, the lifecycle, admission and the mode's runner, started and
 * shut down in the order DESIGN.md gives.
 */
export class Watchdog {
  readonly lifecycle: Lifecycle;
  readonly #server: Server;
  readonly #listener: Listener;
  readonly #runner: Runner;
  readonly #hints: ScaleHints;
  readonly #metrics: Metrics;
  #metricsServer: Server | undefined;
  readonly #warmToken = randomUUID();
  #firstStart = true;
  #shutdown: Promise<void> | undefined;
  /** Specialize requests not answered yet: shutdown waits for their answers. */
  readonly #specializing = new Set<Promise<void>>();

  constructor(private readonly deps: WatchdogDeps) {
    const { config, logger } = deps;
    this.lifecycle = new Lifecycle(logger);
    const admission = new Admission(config);
    const identity: Identity = deps.identity ?? { functionName: config.functionName, specializeMs: undefined };
    this.#hints = new ScaleHints({
      config,
      admission,
      lifecycle: this.lifecycle,
      identity,
      logger,
      send: deps.sendHint ?? postHint,
      now: () => performance.now(),
    });
    this.#metrics = new Metrics({
      inflight: () => admission.inflight,
      queued: () => admission.queued,
      desiredInstances: () => this.#hints.current('pull').desiredInstances,
    });
    const metrics = this.#metrics;
    const hints = this.#hints;
    this.#runner = createRunner({
      ...deps,
      output: {
        maxLine: config.logBufferSize,
        wrap: config.prefixLogs,
        writeRaw: deps.writeRaw,
        onHint: ({ saturated, load, metric }) =>
          hints.fromFunction({
            saturated: typeof saturated === 'boolean' ? saturated : undefined,
            load: typeof load === 'number' ? load : undefined,
            metric: typeof metric === 'string' ? metric : undefined,
          }),
      },
      events: {
        ready: () => this.lifecycle.set('ready'),
        // Only a starting instance becomes generic by the runtime coming up: one restarted while a
        // retried specialization waits for it stays `specializing`.
        generic: () => {
          if (this.lifecycle.state === 'starting') this.lifecycle.set('generic');
        },
        down: (reason) => {
          if (this.lifecycle.state === 'ready') this.lifecycle.set('starting', reason);
        },
        failed: (reason) => this.lifecycle.set('failed', reason),
        started: (seconds) => {
          metrics.coldStart(seconds);
          // A new instance also pays for this watchdog's own start, which the first start shows.
          hints.estimator.startup(this.#firstStart ? Math.max(seconds, process.uptime()) : seconds);
          this.#firstStart = false;
        },
        restarted: () => metrics.restarted(),
        hint: (hint) => hints.fromFunction(hint),
      },
    });
    const specializeHandler = createSpecializeHandler({
      config,
      lifecycle: this.lifecycle,
      runtime: this.#runner instanceof RuntimeRunner ? this.#runner : undefined,
      identity,
      logger,
      specialized: (seconds) => {
        metrics.specialized(seconds);
        hints.estimator.startup(seconds);
      },
    });
    const control = createControl({
      config,
      identity,
      specialize: (req, res) => {
        const answered = specializeHandler(req, res);
        this.#specializing.add(answered);
        void answered.then(() => this.#specializing.delete(answered));
      },
      metrics,
      scale: () => hints.current('pull'),
      lifecycle: this.lifecycle,
      admission,
      runner: this.#runner,
      version: deps.version,
    });
    this.#listener = new Listener({
      config,
      lifecycle: this.lifecycle,
      admission,
      runner: this.#runner,
      logger,
      control,
      metrics,
      tracing: new Tracing(),
      estimator: hints.estimator,
      saturation: () => hints.nudge(),
      warmToken: this.#warmToken,
    });
    this.#server = createServer(
      {
        keepAliveTimeout: config.idleTimeout,
        requestTimeout: config.readTimeout,
        headersTimeout: config.readTimeout === 0 ? 60_000 : Math.min(config.readTimeout, 60_000),
        // Read timeouts are checked on this period; Node's 30 s default would make a 10 s
        // read_timeout fire at up to 40 s.
        connectionsCheckingInterval: Math.max(250, Math.min(1_000, config.readTimeout / 4 || 1_000)),
      },
      this.#listener.onRequest,
    );
    // The listener sends `100 Continue` itself, once it knows it will not refuse the request
    // outright (too large, not ready): a client then never starts a body only to be refused.
    this.#server.on('checkContinue', this.#listener.onRequest);
    this.#server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
      if (!socket.writable || (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent) {
        socket.destroy();
        return;
      }
      const answer = clientErrorOf(error);
      this.#metrics.rejected(answer.code);
      socket.end(rawErrorResponse(answer));
    });
    if (!config.suppressLock) maintainLockFile(config.lockFile, this.lifecycle, logger);
  }

  /** Listens first (so `/_/health` answers while starting), then starts the function. */
  async start(): Promise<number> {
    try {
      return await this.#start();
    } catch (error) {
      // A start that fails takes down what was set up for it: the runtime's socket directory, a
      // process already started.
      await this.#runner.stop(0).catch(() => undefined);
      throw error;
    }
  }

  async #start(): Promise<number> {
    const { config, logger } = this.deps;
    await listen(this.#server, config.port, config.host, 'PILOTLIGHT_PORT');
    const port = (this.#server.address() as AddressInfo).port;
    logger.info({ port, mode: config.mode }, `listening on port ${port}`);
    if (config.metricsPort !== undefined) await this.#serveMetricsPort(config.metricsPort);
    this.#hints.start();
    try {
      await this.#runner.start();
      // Runners with a process say `ready` or `generic` themselves; the others are ready now.
      if (this.lifecycle.state === 'starting') this.lifecycle.set('ready');
      if (this.#runner instanceof RuntimeRunner) await this.#warmUp(port);
      if (this.lifecycle.state === 'generic') warmSpecialization();
    } catch (error) {
      if (this.lifecycle.state !== 'failed') throw error;
    }
    return port;
  }

  /**
   * Sends a few requests through the watchdog's own function path to the runtime's warm path, so
   * the first real request after specialization does not pay for compiling the listener, the
   * proxy and the metrics (about 10 ms). The runtime answers them itself: no user code runs.
   */
  async #warmUp(port: number): Promise<void> {
    const host = this.deps.config.host;
    const target = host === undefined || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve) => {
        const body = i === 0 ? undefined : '{}';
        const headers = { 'x-pilotlight-warm': this.#warmToken, 'content-type': 'application/json', 'content-length': String(body?.length ?? 0) };
        const req = request({ host: target, port, path: '/_pilotlight/warm', method: i === 0 ? 'GET' : 'POST', headers }, (res) => {
          res.resume().once('end', resolve).once('error', () => resolve());
        });
        req.once('error', () => resolve());
        req.end(body);
      });
    }
  }

  /** of-watchdog's separate metrics listener: `GET /metrics` and nothing else. */
  async #serveMetricsPort(port: number): Promise<void> {
    const metrics = this.#metrics;
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || req.url?.split('?', 1)[0] !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      void metrics.exposition().then(({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body));
    });
    await listen(server, port, this.deps.config.host, 'PILOTLIGHT_METRICS_PORT');
    this.#metricsServer = server;
    this.deps.logger.info({ metricsPort: (server.address() as AddressInfo).port }, 'metrics listening');
  }

  /**
   * Graceful shutdown: readiness turns 503 at once, requests are still taken for `drain_delay`,
   * then new ones are refused while those in flight finish within the grace period; then the
   * function's processes get SIGTERM (SIGKILL past the rest of the grace period).
   */
  shutdown(reason: string): Promise<void> {
    this.#shutdown ??= this.#drain(reason);
    return this.#shutdown;
  }

  async #drain(reason: string): Promise<void> {
    const { config, logger } = this.deps;
    const deadline = Date.now() + config.gracePeriod;
    // The end of the grace period belongs to the function's own SIGTERM handling (preStop hooks,
    // last logs): requests get all but its last second (last fifth, when shorter than 5 s), so
    // SIGKILL lands at the deadline and not after it, however long the requests take.
    const requestsDeadline = deadline - Math.min(1_000, config.gracePeriod / 5);
    this.lifecycle.set('draining', reason);
    if (config.drainDelay > 0) await new Promise((r) => setTimeout(r, config.drainDelay));
    this.#listener.stopAccepting();
    this.#server.close();
    this.#server.closeIdleConnections();
    const pending = this.#listener.active;
    if (pending > 0) logger.info({ inflight: pending }, 'waiting for in-flight requests');
    const finished = await Promise.race([
      this.#listener.idle().then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), Math.max(0, requestsDeadline - Date.now())).unref()),
    ]);
    if (!finished) {
      logger.warn(
        { inflight: this.#listener.active, code: 'PILOTLIGHT_GRACE_EXCEEDED' },
        'grace period over with requests still in flight: they are cut off as the function stops',
      );
    }
    await this.#runner.stop(Math.max(0, deadline - Date.now()));
    // A specialization the stop cut short is answered 503 before the connections close.
    await Promise.race([Promise.all(this.#specializing), new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref())]);
    this.#hints.stop();
    this.#metricsServer?.close();
    this.#server.closeAllConnections();
    logger.info('shutdown complete');
  }
}
