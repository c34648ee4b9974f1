import type { ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { type ChildOutputOptions, forwardChildOutput } from '../log/child-output.js';
import { describeExit, type Spawn, signalGroup, spawnGroup, stopGroup } from './group.js';

/** A run counts as healthy once it has answered and stayed up this long. */
const STABLE_AFTER_MS = 10_000;
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 10_000;

/** What the supervisor needs; all of it passed in so tests can drive it. */
export interface SupervisorOptions {
  readonly argv: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly spawn: Spawn;
  readonly logger: Logger;
  readonly output: Omit<ChildOutputOptions, 'stream' | 'logger'>;
  /** Failed runs in a row before giving up. */
  readonly maxRestarts: number;
  /** Gives the process a fourth stdio descriptor, a socketpair, as a control channel. */
  readonly controlChannel: boolean;
  /** Resolves true once `child` can serve, false if it cannot (it exited). */
  readonly waitUntilUp: (child: ChildProcess) => Promise<boolean>;
  /** The process can serve (again), `seconds` after it was started. */
  readonly onUp: (seconds: number) => void;
  /** A new process is being started after an exit. */
  readonly onRestart: () => void;
  /** The process exited; a restart follows unless `onFailed` comes next. */
  readonly onDown: (reason: string) => void;
  /** Too many failed runs in a row; no more restarts. */
  readonly onFailed: (reason: string) => void;
}

/**
 * Keeps one long-lived process running: starts it, waits until it answers, restarts it with
 * exponential backoff when it exits, and declares failure after too many failed runs in a row.
 */
export class Supervisor {
  #child: ChildProcess | undefined;
  #answering = false;
  #stopping = false;
  #failures = 0;
  #lastExit = '';
  /** A process the owner asked to replace (see {@link restart}); its exit is not a failure. */
  #replaced: ChildProcess | undefined;
  #firstUp: { resolve(): void; reject(error: Error): void } | undefined;

  constructor(private readonly options: SupervisorOptions) {}

  /** True while the process runs and has answered a probe. */
  get answering(): boolean {
    return this.#answering;
  }

  /** How the last run ended, for error messages ("exited with code 1"). */
  get lastExit(): string {
    return this.#lastExit;
  }

  /** Starts the process; resolves when it first answers, rejects if it never does. */
  start(): Promise<void> {
    const firstUp = new Promise<void>((resolve, reject) => {
      this.#firstUp = { resolve, reject };
    });
    this.#run();
    return firstUp;
  }

  #run(): void {
    const { argv, env, spawn, logger, output } = this.options;
    const child = spawnGroup(spawn, argv, env, 'ignore', this.options.controlChannel);
    this.#child = child;
    const startedAt = Date.now();
    let upAt = 0;
    logger.info({ pid: child.pid, argv }, 'function process started');
    const childLogger = logger.child({ pid: child.pid });
    forwardChildOutput(child.stdout!, { ...output, logger: childLogger, stream: 'stdout' });
    forwardChildOutput(child.stderr!, { ...output, logger: childLogger, stream: 'stderr' });
    // A process that could not be spawned (not found, not executable) never emits `exit`: it is
    // handled as one that exited at once, so it is retried and, failing, leaves the instance failed.
    let ended = false;
    child.on('error', (error) => {
      logger.error({ code: 'PILOTLIGHT_START_FAILED', err: error }, `function process could not start: ${error.message}`);
      if (child.pid === undefined && !ended) onEnd(`could not be started (${(error as NodeJS.ErrnoException).code ?? error.message})`, null, null);
    });
    child.once('exit', (code, signal) => {
      if (!ended) onEnd(describeExit(code, signal), code, signal);
    });
    const onEnd = (how: string, code: number | null, signal: NodeJS.Signals | null): void => {
      ended = true;
      this.#answering = false;
      this.#lastExit = `function process ${how}`;
      signalGroup(child, 'SIGKILL');
      if (this.#stopping) return;
      const stable = upAt > 0 && Date.now() - upAt >= STABLE_AFTER_MS;
      const replaced = this.#replaced === child;
      this.#failures = stable ? 0 : replaced ? this.#failures : this.#failures + 1;
      this.options.onDown(this.#lastExit);
      if (this.#failures > this.options.maxRestarts) {
        const reason = `${this.#lastExit}; gave up after ${this.options.maxRestarts} failed restarts`;
        this.options.onFailed(reason);
        this.#firstUp?.reject(new Error(reason));
        return;
      }
      const backoff = Math.min(FIRST_BACKOFF_MS * 2 ** Math.max(0, this.#failures - 1), MAX_BACKOFF_MS);
      logger.warn(
        { code: 'PILOTLIGHT_UPSTREAM_RESTARTS', exitCode: code, signal, backoffMs: backoff, failures: this.#failures, ranMs: Date.now() - startedAt },
        `${this.#lastExit}; restarting in ${backoff} ms`,
      );
      setTimeout(() => {
        if (this.#stopping) return;
        this.options.onRestart();
        this.#run();
      }, backoff).unref();
    };
    void this.#waitUntilUp(child).then((answered) => {
      if (!answered) return;
      upAt = Date.now();
      this.#answering = true;
      logger.info({ pid: child.pid, startMs: upAt - startedAt }, 'function process is answering');
      this.options.onUp((upAt - startedAt) / 1000);
      this.#firstUp?.resolve();
      this.#firstUp = undefined;
    });
  }

  async #waitUntilUp(child: ChildProcess): Promise<boolean> {
    const up = await this.options.waitUntilUp(child).catch(() => false);
    return up && this.#child === child && child.exitCode === null && child.signalCode === null && !this.#stopping;
  }

  /** The running process, if any. */
  get child(): ChildProcess | undefined {
    return this.#child;
  }

  /**
   * Kills the current process group so the supervisor restarts it: a hung runtime, or (with
   * `failure: false`) one replaced on purpose by a clean one, which does not count toward
   * `max_restarts` nor grow the backoff. `code` is the cause's error code, logged with it.
   */
  restart(reason: string, code: string, { failure = true }: { failure?: boolean } = {}): void {
    // Once stopping, the process is already being stopped, with its grace period.
    if (!this.#child || this.#stopping) return;
    if (!failure) this.#replaced = this.#child;
    this.options.logger.warn({ code, reason }, `restarting the function process: ${reason}`);
    signalGroup(this.#child, 'SIGKILL');
  }

  /** Whether the current process has exited or does within `ms`, so an error can be blamed on it. */
  exitsWithin(ms: number): Promise<boolean> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        child.off('exit', onExit);
        resolve(false);
      }, ms);
      const onExit = () => {
        clearTimeout(timer);
        resolve(true);
      };
      child.once('exit', onExit);
    });
  }

  /** Stops the process: SIGTERM to its group, SIGKILL past `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    this.#answering = false;
    if (this.#child) await stopGroup(this.#child, graceMs);
  }
}
