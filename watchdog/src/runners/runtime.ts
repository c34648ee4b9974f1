import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { WatchdogError } from '../errors.js';
import type { Invocation } from '../invocation.js';
import type { ChildOutputOptions } from '../log/child-output.js';
import type { Spawn } from '../process/group.js';
import { RuntimeChannel, type RuntimeMessage } from '../process/runtime-channel.js';
import { Supervisor } from '../process/supervisor.js';
import { Upstream } from '../proxy/upstream.js';
import { type Runner, type RunnerEvents, SLOW_START_WARNING } from './runner.js';

/** What to load into a runtime (the `load` message). */
export interface LoadSpec {
  readonly root: string;
  readonly entrypoint?: string | undefined;
  readonly function?: string | undefined;
  readonly env?: Readonly<Record<string, string>> | undefined;
  /** The watchdog unpacked this code and deletes it when the instance stops. */
  readonly owned?: boolean;
}

/** A schedule a loaded function declares (SDK `@Schedule`). */
export interface FunctionSchedule {
  readonly name: string;
  readonly cron: string;
  readonly timezone: string;
}

/** What a runtime reports once a function is loaded. */
export interface Loaded {
  readonly ms: number;
  readonly routes: readonly string[];
  readonly schedules: readonly FunctionSchedule[];
}

/** Everything the runtime runner needs. */
export interface RuntimeRunnerOptions {
  readonly runtime: string;
  readonly argv: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly spawn: Spawn;
  readonly logger: Logger;
  readonly output: Omit<ChildOutputOptions, 'stream' | 'logger'>;
  readonly maxRestarts: number;
  readonly healthcheckInterval: number;
  readonly maxBodySize: number;
  readonly bufferRequestBody: boolean;
  readonly events: RunnerEvents;
  /** This instance's name, passed to the function's context. */
  readonly instance: string;
  /** Code to load at start; without it the instance is generic until specialized. */
  readonly initial: LoadSpec | undefined;
  /** Longest a load at start or after a restart may take, ms (0: no limit); a specialization brings its own. */
  readonly loadTimeout: number;
}

/** Missed pongs in a row before a runtime counts as hung and is restarted. */
const MISSED_PONGS = 3;
const PONG_TIMEOUT_MS = 1_000;

/**
 * A built-in runtime in `http` mode: pre-started before any code is known, health-checked over its
 * control channel, told to load a function late, and proxied to over a Unix socket. A runtime that
 * crashes is restarted and, if a function was loaded, loads it again by itself.
 */
export class RuntimeRunner implements Runner {
  readonly #socketDir: string;
  readonly #upstream: Upstream;
  readonly #supervisor: Supervisor;
  #channel: RuntimeChannel | undefined;
  #loaded: LoadSpec | undefined;
  #schedules: readonly FunctionSchedule[] = [];
  #missedPongs = 0;
  /** Loads in progress: a runtime busy importing may miss pings, and each load has its own deadline. */
  #loading = 0;
  #pingTimer: NodeJS.Timeout | undefined;
  #up: Promise<void> = Promise.resolve();
  #markUp: () => void = () => {};
  #failUp: (error: WatchdogError) => void = () => {};
  #isUp = true;

  constructor(private readonly options: RuntimeRunnerOptions) {
    try {
      this.#socketDir = mkdtempSync(join(tmpdir(), 'pilotlight-'));
    } catch (error) {
      throw new Error(
        `the runtime's socket directory cannot be created under ${tmpdir()} (${(error as Error).message}): give the container a writable TMPDIR (with a read-only root file system, an emptyDir volume)`,
      );
    }
    const socketPath = join(this.#socketDir, 'runtime.sock');
    this.#upstream = new Upstream({
      target: { path: socketPath },
      maxBodySize: options.maxBodySize,
      bufferRequestBody: options.bufferRequestBody,
      // A pool instance can wait idle for long before its first request: the connection made by
      // the warm-up must still be there then. The runtime's own keep-alive is longer still, so
      // the watchdog closes first.
      keepAlive: 600_000,
      // The runtime learns the deadline so the function's context can tell how long it has.
      extraHeaders: (invocation, headers) => {
        if (invocation.deadline !== undefined) headers.push('x-pilotlight-deadline', String(invocation.deadline));
      },
      blame: async () => ((await this.#supervisor.exitsWithin(200)) ? this.#supervisor.lastExit : undefined),
    });
    this.#supervisor = new Supervisor({
      ...options,
      env: { ...options.env, PILOTLIGHT_RUNTIME_SOCKET: socketPath, PILOTLIGHT_CONTROL_FD: '3' },
      controlChannel: true,
      waitUntilUp: (child) => this.#handshake(child),
      onUp: (seconds) => {
        options.events.started(seconds);
        void this.#afterStart();
      },
      onRestart: () => options.events.restarted(),
      onDown: (reason) => {
        this.#channel = undefined;
        this.#resetUp();
        this.#upstream.abortAll(() => new WatchdogError('PILOTLIGHT_UPSTREAM_EXITED', `runtime ${reason} while the request was in flight`));
        options.events.down(reason);
      },
      onFailed: (reason) => {
        // Whoever waits for the runtime to come back (a specialization) is answered now.
        this.#failUp(new WatchdogError('PILOTLIGHT_FAILED', `the runtime could not be kept running: ${reason}`));
        options.events.failed(reason);
      },
    });
    this.#resetUp();
  }

  /** Makes `#up` wait for the next start; a no-op while it already does (keeps its waiters). */
  #resetUp(): void {
    if (!this.#isUp) return;
    this.#isUp = false;
    this.#up = new Promise((resolve, reject) => {
      this.#markUp = () => {
        this.#isUp = true;
        resolve();
      };
      this.#failUp = reject;
    });
    // Failure is reported to waiters; with none, it is not an unhandled rejection.
    this.#up.catch(() => {});
  }

  get healthy(): boolean {
    return this.#channel !== undefined && this.#missedPongs < MISSED_PONGS;
  }

  /** The schedules the loaded function declares. */
  get schedules(): readonly FunctionSchedule[] {
    return this.#schedules;
  }

  async start(): Promise<void> {
    const root = this.options.initial?.root;
    if (root !== undefined && !(await stat(root).catch(() => undefined))?.isDirectory()) {
      throw new WatchdogError(
        'PILOTLIGHT_START_FAILED',
        `function_dir ${root} is not a directory: set PILOTLIGHT_FUNCTION_DIR (--function) to the folder with the function's code`,
      );
    }
    await this.#supervisor.start();
    await this.#up;
    this.#pingTimer = setInterval(() => void this.#ping(), this.options.healthcheckInterval).unref();
  }

  /** Waits for the runtime's `hello`: the handshake that replaces polling. */
  async #handshake(child: ChildProcess): Promise<boolean> {
    const channel = new RuntimeChannel(child);
    const started = performance.now();
    let warning: NodeJS.Timeout | undefined;
    const warn = (): void => {
      const waited = Math.round(performance.now() - started);
      this.options.logger.warn(
        { code: 'PILOTLIGHT_RUNTIME_NO_HELLO', pid: child.pid, waitedMs: waited },
        `the runtime has run for ${Math.round(waited / 1000)} s without saying hello on its control channel; ` +
          'a runtime sends {"type":"hello",...} once it is up (docs/runtime-protocol.md)',
      );
      warning = setTimeout(warn, SLOW_START_WARNING.everyMs).unref();
    };
    warning = setTimeout(warn, SLOW_START_WARNING.firstMs).unref();
    const hello = await channel.next('hello').finally(() => clearTimeout(warning));
    if (!hello) return false;
    this.options.logger.info({ runtime: hello.runtime, protocol: hello.protocol, version: hello.version }, 'runtime is up');
    this.#channel = channel;
    this.#missedPongs = 0;
    channel.on('message', (message) => this.#onMessage(message));
    return true;
  }

  #onMessage(message: RuntimeMessage): void {
    if (message.type === 'hint') {
      const { saturated, load, metric } = message;
      this.options.events.hint({
        saturated: typeof saturated === 'boolean' ? saturated : undefined,
        load: typeof load === 'number' ? load : undefined,
        metric: typeof metric === 'string' ? metric : undefined,
      });
    }
  }

  /** After every (re)start: load the function again if there was one, else wait to be specialized. */
  async #afterStart(): Promise<void> {
    const initial = this.#loaded ?? this.options.initial;
    if (initial === undefined) {
      this.#markUp();
      this.options.events.generic();
      return;
    }
    try {
      await this.#send(initial, this.options.loadTimeout);
      this.#loaded = initial;
      this.#markUp();
      this.options.events.ready();
    } catch (error) {
      this.options.logger.error({ err: error, code: (error as WatchdogError).code }, `could not load the function: ${(error as Error).message}`);
      this.options.events.failed((error as Error).message);
      this.#markUp();
      // Nothing can load other code into this instance: restarting the runtime would only fail
      // the same way, up to max_restarts times.
      void this.#supervisor.stop(1_000);
    }
  }

  /**
   * Tells the runtime a load is likely to follow. A runtime idle for long handles its first
   * message slowly (its process must be scheduled again and its caches refilled): woken while the
   * specialize body is still being read, it has paid that by the time the load arrives. No reply
   * is asked for: handling one would be more work for the watchdog in that same wait (measured:
   * p50 0.2–0.4 ms shorter than with a ping, benchmarks.md, "Pre-warmed pool").
   */
  wake(): void {
    this.#channel?.send({ type: 'wake' });
  }

  /**
   * Loads a function into the generic runtime. A load that fails or times out restarts the
   * runtime, so no half-imported module lingers, and the instance is generic again.
   */
  async load(spec: LoadSpec, timeoutMs: number): Promise<Loaded> {
    const waitStarted = performance.now();
    await this.#waitUntilUp(timeoutMs);
    const left = timeoutMs > 0 ? Math.max(1, timeoutMs - (performance.now() - waitStarted)) : 0;
    try {
      const loaded = await this.#send(spec, left);
      this.#loaded = spec;
      return loaded;
    } catch (error) {
      // From now on the dying runtime is not talked to: a load retried at once (the instance is
      // generic again) waits for the clean one instead of writing to a killed process.
      this.#channel = undefined;
      this.#resetUp();
      // A failed load is the code's fault, not the runtime's: it must not count toward
      // max_restarts, or a few bad specializations would leave the instance `failed`.
      const { code } = error as WatchdogError;
      this.#supervisor.restart(`the load failed (${code}); starting a clean runtime`, code, { failure: false });
      throw error;
    }
  }

  /** Waits for a (re)started runtime, within the specialization's time. */
  async #waitUntilUp(timeoutMs: number): Promise<void> {
    if (this.#isUp || timeoutMs <= 0) return this.#up;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new WatchdogError('PILOTLIGHT_SPECIALIZE_TIMEOUT', `the runtime was not back within ${Math.round(timeoutMs)} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.#up, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #send(spec: LoadSpec, timeoutMs: number): Promise<Loaded> {
    const channel = this.#channel;
    if (!channel) throw new WatchdogError('PILOTLIGHT_NOT_READY', 'the runtime is restarting; retry shortly', { 'retry-after': '1' });
    const { owned: _owned, ...load } = spec;
    this.#loading += 1;
    const reply = await channel
      .request({ type: 'load', ...load, instance: this.options.instance }, timeoutMs > 0 ? timeoutMs : 2 ** 31 - 1)
      .finally(() => (this.#loading -= 1));
    if (reply === undefined) {
      throw new WatchdogError('PILOTLIGHT_SPECIALIZE_TIMEOUT', `the runtime did not load the function within ${Math.round(timeoutMs)} ms`);
    }
    if (reply.type === 'closed') {
      throw new WatchdogError('PILOTLIGHT_LOAD_FAILED', 'the runtime exited while loading the function; its last log lines say why', {}, {
        reason: 'PILOTLIGHT_RUNTIME_EXITED',
      });
    }
    if (reply.type !== 'loaded') {
      throw new WatchdogError('PILOTLIGHT_LOAD_FAILED', `the function failed to load: ${String(reply.message)}`, {}, {
        reason: reply.code,
        stack: reply.stack,
      });
    }
    this.#schedules = (reply.schedules as FunctionSchedule[] | undefined) ?? [];
    return {
      ms: Number(reply.ms),
      routes: (reply.routes as string[] | undefined) ?? [],
      schedules: (reply.schedules as FunctionSchedule[] | undefined) ?? [],
    };
  }

  async #ping(): Promise<void> {
    const channel = this.#channel;
    // A module blocking while it imports is the load's deadline to judge (504), not the pings'.
    if (!channel || this.#loading > 0) return;
    const pong = await channel.request({ type: 'ping' }, PONG_TIMEOUT_MS);
    if (channel !== this.#channel || this.#loading > 0) return;
    this.#missedPongs = pong ? 0 : this.#missedPongs + 1;
    if (this.#missedPongs >= MISSED_PONGS) {
      this.options.logger.error({ code: 'PILOTLIGHT_RUNTIME_UNRESPONSIVE', missed: this.#missedPongs }, 'the runtime stopped answering pings');
      this.#supervisor.restart('the runtime stopped answering pings', 'PILOTLIGHT_RUNTIME_UNRESPONSIVE');
    }
  }

  handle(req: IncomingMessage, res: ServerResponse, invocation: Invocation): Promise<void> {
    return this.#upstream.forward(req, res, invocation);
  }

  async stop(graceMs: number): Promise<void> {
    clearInterval(this.#pingTimer);
    this.#channel?.send({ type: 'stop', graceMs });
    await this.#supervisor.stop(graceMs);
    await this.#upstream.close();
    rmSync(this.#socketDir, { recursive: true, force: true });
    if (this.#loaded?.owned) rmSync(this.#loaded.root, { recursive: true, force: true });
  }
}
