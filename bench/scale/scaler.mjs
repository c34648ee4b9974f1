// The reference scaler and its two inputs.
//
// The scaler is the same for both variants: it keeps the latest `desiredInstances` each live
// instance reported, wants ceil(sum) instances (at least 1, at most max), starts the difference at
// once when that is more than it has (ready + starting), and scales down only to the largest
// number it wanted over the last `cooldown`, stopping idle instances, newest first. The variants
// differ only in how the figures reach it:
//   push   — the watchdogs POST hints to a receiver here (PILOTLIGHT_SCALE_HINT_URL); every hint
//            is applied the moment it arrives;
//   scrape — the scaler GETs /_/scale from every ready instance every `interval` (first round at a
//            random phase) and applies the round once all answers are in (a periodic scrape, as
//            KEDA or Prometheus + HPA do).
import { createServer } from 'node:http';
import { request } from 'undici';
import { now } from './fleet.mjs';

export class Scaler {
  /**
   * @param {object} o
   * @param {import('./fleet.mjs').Fleet} o.fleet
   * @param {number} o.max          most instances (ready + starting)
   * @param {number} o.cooldownMs   scale-down stabilisation window
   * @param {number} [o.tickMs]     how often scale-down is reconsidered without new input
   */
  constructor({ fleet, max, cooldownMs, tickMs = 250 }) {
    this.fleet = fleet;
    this.max = max;
    this.cooldownMs = cooldownMs;
    this.tickMs = tickMs;
    /** instance name → latest desiredInstances reported. */
    this.latest = new Map();
    /** [time, wanted] of every evaluation, for the scale-down window. */
    this.history = [];
    /** Every decision: { t, action: 'up'|'down', count, wanted, have }. */
    this.decisions = [];
    /** Hints (push) or scrape answers (scrape) received while running. */
    this.inputs = 0;
    this.running = false;
    this.pendingStarts = new Set();
    /** Hints received by reason (saturated, changed, heartbeat, pull). */
    this.reasons = {};
    /** instance name → startupSeconds it reported. */
    this.startupSeconds = new Map();
  }

  start() {
    this.running = true;
    this.timer = setInterval(() => this.evaluate(), this.tickMs);
  }

  stop() {
    this.running = false;
    clearInterval(this.timer);
  }

  /** A hint from an instance (pushed, or a scrape answer). */
  observe(hint) {
    if (!this.running) return;
    this.inputs += 1;
    this.latest.set(hint.instance, hint.desiredInstances);
    if (hint.reason) this.reasons[hint.reason] = (this.reasons[hint.reason] ?? 0) + 1;
    // The start-up time each instance believes it has (the estimator's T), for comparison with
    // the spawn → ready time the harness measures.
    if (typeof hint.startupSeconds === 'number' && hint.startupSeconds > 0) this.startupSeconds.set(hint.instance, hint.startupSeconds);
  }

  wanted() {
    let sum = 0;
    for (const inst of this.fleet.ready) sum += this.latest.get(inst.name) ?? 0;
    return Math.min(this.max, Math.max(1, Math.ceil(sum - 1e-9)));
  }

  evaluate() {
    if (!this.running) return;
    const t = now();
    const wanted = this.wanted();
    this.history.push([t, wanted]);
    while (this.history.length > 0 && this.history[0][0] < t - this.cooldownMs) this.history.shift();
    const ready = this.fleet.ready;
    const starting = this.fleet.starting.length;
    const have = ready.length + starting;
    if (wanted > have) {
      const count = wanted - have;
      this.decisions.push({ t, action: 'up', count, wanted, have });
      for (let i = 0; i < count; i++) {
        const started = this.fleet.launch().catch((error) => console.error(`scale-experiment: ${error.message}`));
        this.pendingStarts.add(started);
        started.finally(() => this.pendingStarts.delete(started));
      }
      return;
    }
    // Scale down to the most wanted over the cool-down window, never below 1; only idle instances.
    const target = Math.max(1, ...this.history.map(([, w]) => w));
    let excess = have - target;
    if (excess <= 0) return;
    const stopped = [];
    // Starts still waiting for a start slot cost nothing yet: cancel those first, newest first
    // (as a scheduler deletes pods still pending). Spawned starts are left to finish.
    const queued = this.fleet.starting.filter((inst) => inst.child === undefined);
    for (let i = queued.length - 1; i >= 0 && excess > 0; i--) {
      stopped.push(queued[i]);
      excess -= 1;
    }
    const cancelled = stopped.length;
    let stoppedReady = 0;
    for (let i = ready.length - 1; i >= 0 && excess > 0 && ready.length - stoppedReady > 1; i--) {
      const inst = ready[i];
      if (inst.outstanding > 0) continue;
      stopped.push(inst);
      stoppedReady += 1;
      excess -= 1;
    }
    if (stopped.length === 0) return;
    this.decisions.push({ t, action: 'down', count: stopped.length, cancelled, wanted, have });
    for (const inst of stopped) {
      this.latest.delete(inst.name);
      void this.fleet.stop(inst);
    }
  }

  /** Waits for launches still under way (so that none is left behind at the end of a run). */
  async settle() {
    await Promise.allSettled([...this.pendingStarts]);
  }
}

/** Receives pushed hints and applies each at once. One receiver serves every run. */
export class HintReceiver {
  constructor() {
    this.scaler = undefined;
    this.received = 0;
    this.server = createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        res.writeHead(204).end();
        this.received += 1;
        let hint;
        try {
          hint = JSON.parse(Buffer.concat(chunks).toString());
        } catch {
          return;
        }
        const scaler = this.scaler;
        if (scaler && typeof hint.instance === 'string' && typeof hint.desiredInstances === 'number') {
          scaler.observe(hint);
          scaler.evaluate();
        }
      });
    });
    this.server.keepAliveTimeout = 65_000;
  }

  async listen() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${this.server.address().port}/hints`;
    return this.url;
  }

  close() {
    this.server.closeAllConnections?.();
    return new Promise((resolve) => this.server.close(resolve));
  }
}

/** Polls GET /_/scale on every ready instance every `intervalMs`, then applies the round. */
export class Scraper {
  constructor({ scaler, fleet, intervalMs }) {
    this.scaler = scaler;
    this.fleet = fleet;
    this.intervalMs = intervalMs;
    this.rounds = 0;
  }

  /** The first round comes after a random phase, as a real scrape is not in step with the load. */
  start() {
    this.phaseMs = Math.random() * this.intervalMs;
    this.timer = setTimeout(() => {
      void this.#round();
      this.timer = setInterval(() => void this.#round(), this.intervalMs);
    }, this.phaseMs);
  }

  stop() {
    clearTimeout(this.timer);
    clearInterval(this.timer);
  }

  async #round() {
    this.rounds += 1;
    const answers = await Promise.all(
      this.fleet.ready.map(async (inst) => {
        try {
          const { statusCode, body } = await request(`${inst.origin}/_/scale`, {
            dispatcher: this.fleet.dispatcher,
            headersTimeout: 2_000,
            bodyTimeout: 2_000,
          });
          if (statusCode !== 200) {
            await body.dump();
            return undefined;
          }
          return await body.json();
        } catch {
          return undefined;
        }
      }),
    );
    for (const hint of answers) if (hint && typeof hint.desiredInstances === 'number') this.scaler.observe(hint);
    this.scaler.evaluate();
  }
}
