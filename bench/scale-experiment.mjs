#!/usr/bin/env node
// Scale hints, push vs scrape: what pushed hints are worth to an autoscaler.
//
// A reference scaler and router run in this process over REAL watchdog instances (each a
// `pilotlight --mode http` process with its own 100 ms function process, max_inflight=1, a queue of
// 50). Starting an instance is a real cold start; the scaler pays it. Two variants use the same
// scaler and differ only in input: `push` (instances POST hints here the moment they matter) and
// `scrape` (the scaler GETs /_/scale from every instance every few seconds). Two closed-loop
// workloads after Alibaba's tests (background/README.md): concurrency doubling every wave
// (1, 2, 4 … 32) and bursts of 20 clients over a steady 2. Time is compressed (see --help).
//
//   node bench/scale-experiment.mjs             # ~2 min; --repeat 2 for a second round
//   node bench/scale-experiment.mjs --help
//
// Prints a markdown table; writes everything (timelines, decisions) to bench/results/ as JSON.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, getPriority, loadavg, setPriority } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Fleet, now } from './scale/fleet.mjs';
import { HintReceiver, Scaler, Scraper } from './scale/scaler.mjs';
import { bursts, doubling, run } from './scale/workloads.mjs';

const HERE = fileURLToPath(new URL('.', import.meta.url));

const HELP = `usage: node bench/scale-experiment.mjs [options]

Time is compressed: one wave of the doubling workload lasts --wave seconds instead of Alibaba's
10 s. The platform's timings are given in the same compressed time; instance start-up is NOT
compressed (it is whatever a real watchdog start costs on this machine).

  --variants <list>         push, scrape (scrape:<s> for another interval)   [push,scrape]
  --workloads <list>        doubling, burst                               [doubling,burst]
  --repeat <n>              rounds; each runs every workload × variant afresh        [1]
  --wave <s>                doubling: seconds per concurrency step (1,2,4…32)        [3]
  --burst-wave <s>          burst: seconds per wave: steady load, then the burst at its end
                            (so every variant has settled on the steady load first)  [5]
  --bursts <n>              burst: how many bursts                                   [4]
  --burst-length <s>        burst: seconds the 20 extra clients run                  [1]
  --scrape-interval <s>     scrape: seconds between two scrapes                      [2]
  --hint-min-interval <d>   push: PILOTLIGHT_SCALE_HINT_MIN_INTERVAL                 [200ms]
  --hint-interval <d>       push: PILOTLIGHT_SCALE_HINT_INTERVAL (heartbeat)         [9s]
  --cooldown <s>            scale down only to the most wanted over this window      [2]
  --max <n>                 most instances                                          [40]
  --start-concurrency <n>   cold starts at once (more wait for a slot)        [CPU count]
  --harness-priority <n>    nice value for this process (clients, router, scaler), which
                            a platform runs on other machines; instances keep the
                            normal one. 'none': leave it                              [-5]
  --quiet-wait <s>          before each run, wait up to this long for the machine to be
                            less than 30% busy (other processes); 0: don't wait     [20]
  --startup-samples <n>     sequential cold starts timed before the runs (0: none)   [5]
  --out <file>              JSON results   [bench/results/scale-experiment-<time>.json]`;

const { values: opts } = parseArgs({
  options: {
    variants: { type: 'string', default: 'push,scrape' },
    workloads: { type: 'string', default: 'doubling,burst' },
    repeat: { type: 'string', default: '1' },
    wave: { type: 'string', default: '3' },
    'burst-wave': { type: 'string', default: '5' },
    bursts: { type: 'string', default: '4' },
    'burst-length': { type: 'string', default: '1' },
    'scrape-interval': { type: 'string', default: '2' },
    'hint-min-interval': { type: 'string', default: '200ms' },
    'hint-interval': { type: 'string', default: '9s' },
    cooldown: { type: 'string', default: '2' },
    max: { type: 'string', default: '40' },
    'start-concurrency': { type: 'string', default: String(cpus().length) },
    'quiet-wait': { type: 'string', default: '20' },
    'harness-priority': { type: 'string', default: '-5' },
    'startup-samples': { type: 'string', default: '5' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help) {
  console.log(HELP);
  process.exit(0);
}
function fail(message) {
  console.error(`scale-experiment: ${message}`);
  process.exit(1);
}
const num = (name) => {
  const value = Number(opts[name]);
  if (!(value > 0)) fail(`--${name} takes a positive number`);
  return value;
};
const waveMs = num('wave') * 1000;
const burstWaveMs = num('burst-wave') * 1000;
const burstCount = num('bursts');
const burstMs = num('burst-length') * 1000;
const scrapeMs = num('scrape-interval') * 1000;
const cooldownMs = num('cooldown') * 1000;
const maxInstances = num('max');
const repeat = num('repeat');
const startConcurrency = num('start-concurrency');
const quietWaitMs = Number(opts['quiet-wait']) * 1000;
const startupSamples = Number(opts['startup-samples']);
if (burstMs >= burstWaveMs) fail('--burst-length must be shorter than --burst-wave');

const variants = opts.variants.split(',').map((v) => {
  const [kind, interval] = v.split(':');
  if (kind === 'push' && interval === undefined) return { name: 'push', kind };
  if (kind === 'scrape') {
    const ms = interval === undefined ? scrapeMs : Number(interval) * 1000;
    if (!(ms > 0)) fail(`bad variant "${v}"`);
    return { name: `scrape ${ms / 1000} s`, kind, intervalMs: ms };
  }
  return fail(`unknown variant "${v}"; known: push, scrape, scrape:<seconds>`);
});
const workloads = opts.workloads.split(',').map((w) => {
  if (w === 'doubling') return doubling({ waveMs, steps: [1, 2, 4, 8, 16, 32] });
  if (w === 'burst') return bursts({ waveMs: burstWaveMs, waves: burstCount, steady: 2, burst: 20, burstMs, offsetMs: burstWaveMs - burstMs });
  return fail(`unknown workload "${w}"; known: doubling, burst`);
});
if (!existsSync(join(HERE, '..', 'watchdog', 'dist', 'main.js'))) fail('the watchdog is not built: run `npx tsc -b` in the repository root first');

const INSTANCE_ENV = {
  PILOTLIGHT_MAX_INFLIGHT: '1',
  PILOTLIGHT_MAX_QUEUE: '50',
  PILOTLIGHT_QUEUE_TIMEOUT: '60s',
  PILOTLIGHT_EXEC_TIMEOUT: '10s',
};

// The harness stands for the clients and the platform's router and scaler, which run on other
// machines: on this small one it gets a better nice value, so that its measurements are not
// delayed by the instances it starts. The instances get the normal one back.
const basePriority = getPriority();
let childPriority;
if (opts['harness-priority'] !== 'none') {
  const wanted = Number(opts['harness-priority']);
  if (!Number.isInteger(wanted) || wanted < -20 || wanted > 19) fail('--harness-priority takes a nice value (-20 to 19) or none');
  try {
    setPriority(wanted);
    childPriority = basePriority;
  } catch (error) {
    console.error(`scale-experiment: could not set the harness priority (${error.code ?? error.message}); running without`);
  }
}

// --- bookkeeping -------------------------------------------------------------------------------

const fleets = new Set();
function cleanup() {
  for (const fleet of fleets) fleet.killAll();
}
process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    cleanup();
    process.exit(130);
  });
}
// Bounded: whatever happens, the experiment ends.
const budgetMs = 60_000 + repeat * workloads.length * variants.length * 90_000;
setTimeout(() => fail(`did not finish within ${budgetMs / 1000} s; giving up`), budgetMs).unref();

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
const median = (values) => quantile([...values].sort((a, b) => a - b), 0.5);

/** Most instances alive at once between two moments (exact, from the spawn/exit intervals). */
function peakAlive(fleet, from, to) {
  const events = [];
  for (const inst of fleet.all) {
    if (inst.spawnedAt === undefined) continue;
    const start = Math.max(from, inst.spawnedAt);
    const end = Math.min(to, inst.exitedAt ?? to);
    if (end <= start) continue;
    events.push([start, 1], [end, -1]);
  }
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let alive = 0;
  let peak = 0;
  for (const [, d] of events) peak = Math.max(peak, (alive += d));
  return peak;
}

/** Idle and total CPU time of the machine so far, from /proc/stat (undefined off Linux). */
function cpuTimes() {
  try {
    const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/);
    const values = fields.map(Number);
    return { idle: values[3] + (values[4] ?? 0), total: values.reduce((a, b) => a + b, 0) };
  } catch {
    return undefined;
  }
}

/** Fraction of all CPUs busy between two cpuTimes() readings. */
function busyBetween(a, b) {
  if (!a || !b || b.total === a.total) return undefined;
  return 1 - (b.idle - a.idle) / (b.total - a.total);
}

async function busy(ms) {
  const a = cpuTimes();
  await sleep(ms);
  return busyBetween(a, cpuTimes());
}

/** Waits (up to --quiet-wait) until the machine is less than 30% busy; returns the last reading. */
async function waitQuiet() {
  const until = now() + quietWaitMs;
  let last = await busy(1_000);
  while (last !== undefined && last >= 0.3 && now() < until) last = await busy(1_000);
  return last;
}

// --- one run -----------------------------------------------------------------------------------

async function timeStartups(count) {
  const fleet = new Fleet({ prefix: 'startup', env: INSTANCE_ENV, startConcurrency, childPriority });
  fleets.add(fleet);
  const samples = [];
  for (let i = 0; i < count; i++) {
    const inst = await fleet.launch();
    samples.push(inst.startupMs);
    await fleet.stop(inst);
  }
  await fleet.close();
  fleets.delete(fleet);
  return samples;
}

async function runOne(receiver, variant, workload, round) {
  const env = { ...INSTANCE_ENV };
  if (variant.kind === 'push') {
    env.PILOTLIGHT_SCALE_HINT_URL = receiver.url;
    env.PILOTLIGHT_SCALE_HINT_MIN_INTERVAL = opts['hint-min-interval'];
    env.PILOTLIGHT_SCALE_HINT_INTERVAL = opts['hint-interval'];
  }
  const busyBefore = await waitQuiet();
  const fleet = new Fleet({ prefix: `${variant.kind}-${workload.name}-r${round}`, env, startConcurrency, childPriority });
  fleets.add(fleet);
  await fleet.launch();
  await sleep(1_000); // the first instance settles; its first heartbeat is in

  const scaler = new Scaler({ fleet, max: maxInstances, cooldownMs });
  const scraper = variant.kind === 'scrape' ? new Scraper({ scaler, fleet, intervalMs: variant.intervalMs }) : undefined;
  const load = loadavg()[0];
  scaler.start();
  if (variant.kind === 'push') receiver.scaler = scaler;
  scraper?.start();

  const timeline = [];
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const cpuBefore = cpuTimes();
  const ownBefore = process.cpuUsage();
  const t0 = now();
  const sampler = setInterval(() => {
    timeline.push({
      t: Math.round(now() - t0),
      ready: fleet.ready.length,
      starting: fleet.starting.length,
      wanted: scaler.wanted(),
      queued: fleet.ready.reduce((sum, i) => sum + Math.max(0, i.outstanding - 1), 0),
    });
  }, 100);
  const result = await run(workload, () => fleet.send());
  clearInterval(sampler);
  lag.disable();
  const busyDuring = busyBetween(cpuBefore, cpuTimes());
  const own = process.cpuUsage(ownBefore);
  const harnessCpu = (own.user + own.system) / 1000 / (now() - t0);
  scraper?.stop();
  scaler.stop();
  receiver.scaler = undefined;

  const instanceSeconds = fleet.instanceSeconds(result.t0, result.end);
  const peak = peakAlive(fleet, result.t0, result.end);
  await scaler.settle();
  await fleet.stopAll();
  await fleet.close();
  fleets.delete(fleet);

  const latencies = result.samples.filter((s) => s.status === 200).map((s) => s.ms).sort((a, b) => a - b);
  const non200 = result.samples.filter((s) => s.status !== 200).length;
  const launched = fleet.all.filter((i) => i.requestedAt >= result.t0 && i.startupMs !== undefined);
  // Cold starts paid for (spawned), and starts cancelled before they were spawned.
  const coldStarts = fleet.all.filter((i) => i.requestedAt >= result.t0 && i.spawnedAt !== undefined).length;
  const cancelledStarts = fleet.all.filter((i) => i.requestedAt >= result.t0 && i.spawnedAt === undefined).length;
  const startups = launched.map((i) => i.startupMs);
  // From the scaler's decision to the instance taking requests: start-up plus any wait for a start slot.
  const scaleUpDelays = launched.map((i) => i.readyAt - i.requestedAt);
  // Reaction: from each step-up of the load to the scaler's first decision to start instances.
  const ups = scaler.decisions.filter((d) => d.action === 'up').map((d) => d.t - result.t0);
  const reactions = workload.waves
    .map((w, i) => {
      const next = workload.waves[i + 1] ?? workload.durationMs;
      const first = ups.find((t) => t >= w && t < next);
      return first === undefined ? undefined : first - w;
    })
    .filter((r) => r !== undefined);
  return {
    round,
    workload: workload.name,
    variant: variant.name,
    loadavgBefore: load,
    busyBefore,
    busyDuring,
    harnessCpu,
    harnessLagMsP99: lag.percentile(99) / 1e6,
    harnessLagMsMax: lag.max / 1e6,
    perWave: workload.waves.map((w, i) => {
      const next = workload.waves[i + 1] ?? workload.durationMs;
      const inWave = result.samples.filter((x) => x.status === 200 && x.t >= w && x.t < next).map((x) => x.ms).sort((a, b) => a - b);
      return { at: w, requests: inWave.length, p50: quantile(inWave, 0.5), p99: quantile(inWave, 0.99), max: inWave.at(-1) };
    }),
    requests: latencies.length,
    errors: result.errors.length + non200,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    max: latencies.at(-1),
    instanceSeconds,
    clientSeconds: workload.clientSeconds,
    peak,
    started: startups.length,
    coldStarts,
    cancelledStarts,
    startupMsMedian: median(startups),
    startupMsMax: startups.length > 0 ? Math.max(...startups) : NaN,
    scaleUpDelayMsMedian: median(scaleUpDelays),
    scaleUpDelayMsMax: scaleUpDelays.length > 0 ? Math.max(...scaleUpDelays) : NaN,
    inputs: scaler.inputs,
    scrapePhaseMs: scraper?.phaseMs,
    inputsByReason: scaler.reasons,
    hintStartupMsMedian: median([...scaler.startupSeconds.values()].map((s) => s * 1000)),
    reactionMsMedian: median(reactions),
    reactionWaves: `${reactions.length}/${workload.waves.length}`,
    decisions: scaler.decisions.map((d) => ({ ...d, t: Math.round(d.t - result.t0) })),
    timeline,
    errorSamples: result.errors.slice(0, 5),
  };
}

// --- main --------------------------------------------------------------------------------------

const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : '–');
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '–');
const pct = (x) => (x === undefined ? '?' : `${Math.round(x * 100)}%`);

async function main() {
  console.log(
    `scale experiment: ${cpus().length} CPUs, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}; variants ${variants.map((v) => v.name).join(', ')}; ${repeat} round(s)`,
  );
  const startup = startupSamples > 0 ? await timeStartups(startupSamples) : [];
  if (startup.length > 0) {
    console.log(`instance start-up (spawn → ready, one at a time, ${startup.length}×): ${startup.map(f0).join(', ')} ms`);
  }
  const receiver = new HintReceiver();
  await receiver.listen();
  const results = [];
  for (let round = 1; round <= repeat; round++) {
    for (const workload of workloads) {
      // Alternate which variant goes first, so drift in the machine's load hits both.
      const order = round % 2 === 1 ? variants : [...variants].reverse();
      for (const variant of order) {
        const r = await runOne(receiver, variant, workload, round);
        results.push(r);
        console.log(
          `  round ${round} ${workload.name} ${variant.name}: ${r.requests} req, p50 ${f0(r.p50)} ms, p99 ${f0(r.p99)} ms, ` +
            `max ${f0(r.max)} ms, ${f1(r.instanceSeconds)} instance-s, peak ${r.peak}, ${r.inputs} inputs, errors ${r.errors}, ` +
            `${r.coldStarts} cold starts (+${r.cancelledStarts} cancelled), start-up p50 ${f0(r.startupMsMedian)} ms (T in hints p50 ${f0(r.hintStartupMsMedian)} ms), decision→ready p50 ${f0(r.scaleUpDelayMsMedian)} max ${f0(r.scaleUpDelayMsMax)} ms, ` +
            `inputs by reason ${JSON.stringify(r.inputsByReason)}, machine ${pct(r.busyBefore)} busy before, ${pct(r.busyDuring)} during, ` +
            `harness ${pct(r.harnessCpu)} of a CPU, event-loop lag p99 ${f0(r.harnessLagMsP99)} ms max ${f0(r.harnessLagMsMax)} ms\n` +
            `    per wave p99 ms: ${r.perWave.map((w) => f0(w.p99)).join(' ')}`,
        );
      }
    }
  }
  await receiver.close();

  const lines = [
    '| workload | variant | round | requests | errors | p50 ms | p99 ms | max ms | instance-s | peak | cold starts | hints | reaction ms | decision→ready p50 ms |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  const sorted = [...results].sort(
    (a, b) => workloads.findIndex((w) => w.name === a.workload) - workloads.findIndex((w) => w.name === b.workload) || a.variant.localeCompare(b.variant) || a.round - b.round,
  );
  for (const r of sorted) {
    lines.push(
      `| ${r.workload} | ${r.variant} | ${r.round} | ${r.requests} | ${r.errors} | ${f0(r.p50)} | ${f0(r.p99)} | ${f0(r.max)} | ${f1(r.instanceSeconds)} | ${r.peak} | ${r.coldStarts} (+${r.cancelledStarts}) | ${r.inputs} | ${f0(r.reactionMsMedian)} (${r.reactionWaves}) | ${f0(r.scaleUpDelayMsMedian)} |`,
    );
  }
  console.log('');
  console.log(workloads.map((w) => `${w.name}: ${w.describe} (${w.clientSeconds} client-seconds)`).join('\n'));
  console.log('');
  console.log(lines.join('\n'));
  console.log(
    '\ninstance-s, peak: over the workload only. cold starts: instances spawned (+ starts cancelled before a start slot freed). ' +
      'hints: inputs the scaler received (push: hints POSTed; scrape: /_/scale answers). reaction: median time from a load step ' +
      'to the first scale-up decision (steps with one / steps). decision→ready: from that decision to the instance taking requests, ' +
      'start-up plus waiting for one of the start slots.',
  );

  const out = opts.out ?? join(HERE, 'results', `scale-experiment-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(join(out, '..'), { recursive: true });
  writeFileSync(
    out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        cpus: cpus().length,
        node: process.version,
        options: opts,
        priority: { harness: getPriority(), instances: childPriority ?? getPriority() },
        instanceEnv: INSTANCE_ENV,
        startupMs: startup,
        workloads: workloads.map(({ name, describe, groups, waves, durationMs, clientSeconds }) => ({ name, describe, groups, waves, durationMs, clientSeconds })),
        results,
        table: lines.join('\n'),
      },
      null,
      1,
    ),
  );
  console.log(`\nresults: ${out}`);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
