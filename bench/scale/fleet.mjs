// The instances of the scale experiment and the router in front of them.
//
// An instance is a real `pilotlight --mode http` process supervising its own function process
// (function.mjs): starting one is a real cold start (two Node processes, the watchdog probing the
// function until it answers), stopping one is a real SIGTERM drain. The router sends each request
// to the ready instance with the fewest requests outstanding (ties: the oldest, so load packs onto
// old instances and new ones stay idle when not needed); when every instance is busy the request
// queues at that instance, in the watchdog's own bounded queue.
import { spawn } from 'node:child_process';
import { setPriority } from 'node:os';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';

const BIN = fileURLToPath(new URL('../../watchdog/bin/pilotlight.js', import.meta.url));
const FUNCTION = fileURLToPath(new URL('./function.mjs', import.meta.url));

/** Every Node start pays for NODE_EXTRA_CA_CERTS (~50 ms); production images don't set it. */
export function cleanEnv(extra = {}) {
  const env = { ...process.env, ...extra };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

export const now = () => performance.now();

/**
 * A free port for a function process, below the kernel's ephemeral range (32768+) so that client
 * sockets, which take ephemeral ports, cannot grab it between this check and the function's
 * listen(); and away from 17000+, which bench/proxy-overhead.mjs uses.
 */
let nextPort = 12_000 + Math.floor(Math.random() * 2_000);
async function freePort() {
  for (let tries = 0; tries < 5_000; tries++) {
    const port = nextPort++;
    if (nextPort >= 16_900) nextPort = 12_000;
    const free = await new Promise((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port in 12000-16900');
}

let serial = 0;

/** One instance: a watchdog process and its function process. */
class Instance {
  constructor(name) {
    this.name = name;
    /** starting → ready → stopping → exited (or starting → exited when the start fails). */
    this.state = 'starting';
    /** When the scaler asked for it; it may then wait for a start slot before it is spawned. */
    this.requestedAt = now();
    this.spawnedAt = undefined;
    this.readyAt = undefined;
    this.exitedAt = undefined;
    this.port = undefined;
    /** Requests the router has sent and not yet seen answered. */
    this.outstanding = 0;
    this.child = undefined;
    this.exited = undefined;
  }

  get startupMs() {
    return this.readyAt === undefined ? undefined : this.readyAt - this.spawnedAt;
  }
}

export class Fleet {
  /**
   * @param {object} options
   * @param {string} options.prefix        instance names are `<prefix>-<n>`
   * @param {Record<string,string>} options.env  extra PILOTLIGHT_* settings for every instance
   * @param {(inst: Instance) => void} [options.onReady]
   */
  constructor({ prefix, env, functionMs = 100, startConcurrency = Infinity, childPriority, onReady = () => {} }) {
    this.prefix = prefix;
    /** Nice value for the watchdogs (and so their function processes), when the harness runs at another. */
    this.childPriority = childPriority;
    this.startConcurrency = startConcurrency;
    this.startsRunning = 0;
    /** Launches waiting for a start slot. */
    this.startQueue = [];
    this.env = env;
    this.functionMs = functionMs;
    this.onReady = onReady;
    /** Every instance ever started, in start order. */
    this.all = [];
    this.failedStarts = 0;
    this.dispatcher = new Agent({ connections: 128, pipelining: 1, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 30_000 });
  }

  get ready() {
    return this.all.filter((i) => i.state === 'ready');
  }

  get starting() {
    return this.all.filter((i) => i.state === 'starting');
  }

  /** Starts an instance; the returned promise resolves when it is ready (rejects if it died). */
  async launch() {
    const inst = new Instance(`${this.prefix}-${++serial}`);
    this.all.push(inst);
    // At most `startConcurrency` cold starts at once: on a small machine more only slow each
    // other down (and everything else), and a platform node limits parallel starts too.
    if (this.startsRunning >= this.startConcurrency) await new Promise((resolve) => this.startQueue.push(resolve));
    this.startsRunning += 1;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.startsRunning -= 1;
      this.startQueue.shift()?.();
    };
    if (inst.state !== 'starting') {
      // Cancelled while waiting for a slot.
      release();
      inst.exitedAt = now();
      inst.state = 'exited';
      return inst;
    }
    try {
      return await this.#spawn(inst);
    } finally {
      release();
    }
  }

  async #spawn(inst) {
    const upstreamPort = await freePort();
    if (inst.state !== 'starting') {
      inst.exitedAt = now();
      inst.state = 'exited';
      return inst;
    }
    inst.spawnedAt = now();
    const child = spawn(process.execPath, [BIN], {
      env: cleanEnv({
        PILOTLIGHT_MODE: 'http',
        PILOTLIGHT_PORT: '0',
        PILOTLIGHT_HOST: '127.0.0.1',
        PILOTLIGHT_SUPPRESS_LOCK: 'true',
        PILOTLIGHT_LOG_LEVEL: 'info',
        PILOTLIGHT_INSTANCE: inst.name,
        PILOTLIGHT_FUNCTION_NAME: 'sleep100',
        PILOTLIGHT_PROCESS: `${process.execPath} ${FUNCTION}`,
        PILOTLIGHT_UPSTREAM_URL: `http://127.0.0.1:${upstreamPort}`,
        PILOTLIGHT_GRACE_PERIOD: '5s',
        UPSTREAM_PORT: String(upstreamPort),
        FUNCTION_MS: String(this.functionMs),
        ...this.env,
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    inst.child = child;
    // Before the watchdog forks its function process (it loads its modules first), so both run at
    // the machine's normal priority while the harness keeps its own.
    if (this.childPriority !== undefined && child.pid !== undefined) {
      try {
        setPriority(child.pid, this.childPriority);
      } catch {
        // Best effort.
      }
    }
    inst.exited = new Promise((resolve) => child.once('exit', resolve));
    const errors = [];
    createInterface({ input: child.stderr }).on('line', (line) => errors.length < 20 && errors.push(line));
    return new Promise((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        if (!line.startsWith('{')) return;
        let record;
        try {
          record = JSON.parse(line);
        } catch {
          return;
        }
        if (record.port && inst.port === undefined) inst.port = record.port;
        if (record.level === 'error' || record.level === 50) errors.length < 20 && errors.push(line);
        if (record.state === 'ready' && inst.state === 'starting' && inst.port !== undefined) {
          inst.readyAt = now();
          inst.state = 'ready';
          inst.origin = `http://127.0.0.1:${inst.port}`;
          this.onReady(inst);
          resolve(inst);
        }
      });
      child.once('exit', (code, signal) => {
        inst.exitedAt = now();
        if (inst.state === 'starting') {
          this.failedStarts += 1;
          reject(new Error(`instance ${inst.name} exited (${code ?? signal}) before it was ready: ${errors.join('\n')}`));
        }
        inst.state = 'exited';
      });
    });
  }

  /** Stops an instance: no new requests from now, SIGTERM once its last request is answered. */
  stop(inst) {
    if (inst.state === 'starting' && inst.child === undefined) {
      inst.state = 'cancelled';
      return Promise.resolve();
    }
    if (inst.state !== 'ready' && inst.state !== 'starting') return inst.exited ?? Promise.resolve();
    inst.state = 'stopping';
    inst.stopAt = now();
    const signal = () => inst.child.exitCode === null && inst.child.signalCode === null && inst.child.kill('SIGTERM');
    if (inst.outstanding === 0) signal();
    else inst.drained = signal;
    return inst.exited;
  }

  async stopAll() {
    await Promise.all(this.all.map((inst) => this.stop(inst)));
  }

  /** Kills whatever still runs (process exit, Ctrl-C). Synchronous. */
  killAll() {
    for (const inst of this.all) {
      if (inst.state === 'starting' && inst.child === undefined) inst.state = 'cancelled';
      if (inst.child && inst.child.exitCode === null && inst.child.signalCode === null) inst.child.kill('SIGTERM');
    }
  }

  /** The ready instance with the fewest requests outstanding; ties go to the oldest. */
  pick() {
    let best;
    for (const inst of this.all) {
      if (inst.state !== 'ready') continue;
      if (best === undefined || inst.outstanding < best.outstanding) best = inst;
    }
    return best;
  }

  /** Sends one request through the router; resolves with the HTTP status. */
  async send() {
    const inst = this.pick();
    if (inst === undefined) throw new Error('no ready instance');
    inst.outstanding += 1;
    try {
      const { statusCode, body } = await request(inst.origin, {
        method: 'POST',
        body: 'x',
        dispatcher: this.dispatcher,
        headersTimeout: 60_000,
        bodyTimeout: 60_000,
      });
      await body.dump();
      return statusCode;
    } finally {
      inst.outstanding -= 1;
      if (inst.outstanding === 0 && inst.drained) {
        inst.drained();
        inst.drained = undefined;
      }
    }
  }

  /** Instance-seconds between two moments: each instance counts from spawn to exit. */
  instanceSeconds(from, to) {
    let ms = 0;
    for (const inst of this.all) {
      if (inst.spawnedAt === undefined) continue;
      const start = Math.max(from, inst.spawnedAt);
      const end = Math.min(to, inst.exitedAt ?? to);
      if (end > start) ms += end - start;
    }
    return ms / 1000;
  }

  async close() {
    await this.dispatcher.close();
  }
}
