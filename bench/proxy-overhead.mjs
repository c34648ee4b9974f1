#!/usr/bin/env node
// Proxy overhead in http mode: one trivial node:http upstream ("hello world") served
//   direct      — wrk talks to the upstream itself (the ceiling),
//   pilotlight  — through `pilotlight --mode http`,
//   of-watchdog — through OpenFaaS of-watchdog with mode=http (as shipped: one log line per request),
//   of-watchdog-quiet — the same, but requests carry `User-Agent: kube-probe/…`, the only way to
//                 stop of-watchdog's per-request log line (its http runner skips kubelet probes),
// all on this machine, measured with wrk. Each round starts every target afresh, warms it up and
// measures each connection count; rounds interleave the targets; the report gives the median.
//
// Run `node proxy-overhead.mjs --help` for the options. Results also go to bench/results/ (JSON).
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = join(HERE, '..');
const UPSTREAM = join(HERE, 'upstream.mjs');
const PILOTLIGHT = join(ROOT, 'watchdog', 'bin', 'pilotlight.js');
const ALL_TARGETS = ['direct', 'pilotlight', 'of-watchdog', 'of-watchdog-quiet'];
const KUBE_PROBE_UA = 'kube-probe/1.30 (pilotlight-bench)';
/** of-watchdog always serves Prometheus metrics here; it cannot be moved. */
const OF_WATCHDOG_METRICS_PORT = 8081;

const HELP = `usage: node proxy-overhead.mjs [options]

  --duration <s>        seconds per measured run                 [10]
  --warmup <s>          seconds of warm-up after each start      [5]
  --rounds <n>          rounds; each starts every target afresh   [3]
  --connections <list>  wrk connection counts, comma-separated    [50,1]
  --targets <list>      any of ${ALL_TARGETS.join(',')}   [all]
  --pin <how>           none:    nothing pinned, wrk on one thread
                        loadgen: wrk pinned to the last CPU, the rest unpinned  [default]
                        split:   wrk on the last CPU, the proxy and upstream on the others
  --quiet-wait <s>      before each measured run, wait up to this long for other processes
                        on the machine to use < 10% of a CPU; 0 = don't wait     [120]
  --out <file>          JSON results                    [bench/results/proxy-overhead-<time>.json]

Environment: OF_WATCHDOG_BIN (else 'of-watchdog' on PATH; without it the of-watchdog targets are
skipped), OF_WATCHDOG_COMMIT (recorded with the results; its --version says only "dev" when built
with a plain \`go build\`), WRK_BIN (else 'wrk' on PATH). NODE_EXTRA_CA_CERTS is removed for every process started.`;

const { values: opts } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50,1' },
    targets: { type: 'string', default: ALL_TARGETS.join(',') },
    pin: { type: 'string', default: 'loadgen' },
    'quiet-wait': { type: 'string', default: '120' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help) {
  console.log(HELP);
  process.exit(0);
}

function fail(message) {
  console.error(`proxy-overhead: ${message}`);
  process.exit(1);
}

const duration = Number(opts.duration);
const warmup = Number(opts.warmup);
const rounds = Number(opts.rounds);
const connections = opts.connections.split(',').map(Number);
const quietWait = Number(opts['quiet-wait']);
if (!(duration > 0) || !(warmup >= 0) || !(rounds >= 1) || connections.some((c) => !(c >= 1))) {
  fail('--duration, --warmup, --rounds and --connections take positive numbers');
}
if (!['none', 'loadgen', 'split'].includes(opts.pin)) fail('--pin is one of none, loadgen, split');

// --- tools -------------------------------------------------------------------------------------

function onPath(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

const wrk = process.env.WRK_BIN || onPath('wrk');
if (!wrk || !existsSync(wrk)) fail("wrk not found: install it (Debian/Ubuntu: apt-get install wrk) or set WRK_BIN");
if (!existsSync(join(ROOT, 'watchdog', 'dist', 'main.js'))) {
  fail('the watchdog is not built: run `npm run build` (or `npx tsc -b watchdog`) in the repository root first');
}
const ofWatchdog = process.env.OF_WATCHDOG_BIN || onPath('of-watchdog');
let targets = opts.targets.split(',');
for (const t of targets) if (!ALL_TARGETS.includes(t)) fail(`unknown target "${t}"; known: ${ALL_TARGETS.join(', ')}`);
if (!ofWatchdog || !existsSync(ofWatchdog)) {
  if (targets.some((t) => t.startsWith('of-watchdog'))) {
    console.error(
      'proxy-overhead: of-watchdog not found (set OF_WATCHDOG_BIN or put it on PATH); SKIPPING the of-watchdog targets.\n' +
        '  Build it from a checkout of github.com/openfaas/of-watchdog with `go build` (see docs/benchmarks.md).',
    );
  }
  targets = targets.filter((t) => !t.startsWith('of-watchdog'));
}

if (targets.some((t) => t.startsWith('of-watchdog')) && (process.execPath.includes(' ') || UPSTREAM.includes(' '))) {
  fail(`of-watchdog splits fprocess on spaces and cannot start ${process.execPath} ${UPSTREAM}; use paths without spaces`);
}

const nproc = cpus().length;
const lastCpu = nproc - 1;
if (opts.pin !== 'none' && nproc < 2) fail('--pin needs at least 2 CPUs; use --pin none');
const taskset = onPath('taskset');
if (opts.pin !== 'none' && !taskset) fail('taskset not found (util-linux); use --pin none');
/** CPU list for the system under test (proxy and upstream), undefined for unpinned. */
const sutCpus = opts.pin === 'split' ? (nproc === 2 ? '0' : `0-${lastCpu - 1}`) : undefined;
const wrkCpus = opts.pin === 'none' ? undefined : String(lastCpu);

/** Environment for every process started: no NODE_EXTRA_CA_CERTS (it costs ~50 ms per Node start). */
function cleanEnv(extra = {}) {
  const env = { ...process.env, ...extra };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

function pinned(cpuList, command, args) {
  return cpuList === undefined ? [command, args] : [taskset, ['-c', cpuList, command, ...args]];
}

/**
 * A free port below the kernel's ephemeral range. Ports the kernel hands out for listen(0) are
 * also the ones it picks as client source ports, and thousands of benchmark connections make
 * "free now, taken by a client socket a moment later" (EADDRINUSE) likely.
 */
let nextPort = 17_000;
async function freePort() {
  while (nextPort < 30_000) {
    const port = nextPort++;
    if (port === OF_WATCHDOG_METRICS_PORT) continue;
    if (await portIsFree(port, '127.0.0.1')) return port;
  }
  throw new Error('no free port between 17000 and 30000');
}

async function portIsFree(port, host) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

// --- CPU accounting ----------------------------------------------------------------------------

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** utime + stime of one process (all its threads), in ms. */
function cpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** CPU time of this script's reaped children (wrk runs are reaped as they end), in ms. */
function reapedChildrenCpuMs() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / CLK_TCK;
}

/** Busy CPU time of the whole machine (all CPUs, steal excluded), in ms. */
function machineBusyMs() {
  const [, ...f] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  // user nice system idle iowait irq softirq steal ...
  return ((f[0] + f[1] + f[2] + f[5] + f[6]) * 1000) / CLK_TCK;
}

/**
 * Snapshot for measuring what *other* processes (not this script, its wrk, or the target) use:
 * this machine is shared, and a busy neighbour changes every number.
 */
function cpuSnapshot(pids) {
  return {
    at: performance.now(),
    machine: machineBusyMs(),
    own: cpuMs(process.pid) + reapedChildrenCpuMs() + pids.reduce((a, pid) => a + cpuMs(pid), 0),
  };
}

/** CPUs' worth of time that other processes used between two snapshots. */
function foreignCpus(before, after) {
  const wall = after.at - before.at;
  return Math.max(0, after.machine - before.machine - (after.own - before.own)) / wall;
}

/** Waits until other processes use less than 10% of a CPU for a second, up to `quietWait` s. */
async function waitForQuiet(pids) {
  if (quietWait <= 0) return 0;
  const deadline = Date.now() + quietWait * 1000;
  let told = false;
  for (;;) {
    const before = cpuSnapshot(pids);
    await sleep(1_000);
    const load = foreignCpus(before, cpuSnapshot(pids));
    if (load < 0.1) return load;
    if (Date.now() > deadline) {
      console.log(`  (machine still busy: other processes use ${(load * 100).toFixed(0)}% of a CPU; measuring anyway)`);
      return load;
    }
    if (!told) {
      console.log(`  (waiting for other processes to settle: they use ${(load * 100).toFixed(0)}% of a CPU)`);
      told = true;
    }
  }
}

// --- process bookkeeping -----------------------------------------------------------------------

/** Direct children of a process. */
function childrenOf(pid) {
  const out = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) out.push(...text.split(' ').map(Number));
    }
  } catch {
    // gone already
  }
  return out;
}

/** The real process under a `taskset` wrapper is the same pid (taskset execs), so no unwrapping. */
function descendants(pid) {
  const all = [];
  for (const child of childrenOf(pid)) all.push(child, ...descendants(child));
  return all;
}

const running = new Set();
/** Log files of started processes; removed after a successful run, kept for diagnosis otherwise. */
const logs = new Set();

/** Set once the script is interrupted: nothing new is started after that. */
let interrupted = false;

/** Starts a command in its own process group, output to a log file. */
function start(name, command, args, env) {
  if (interrupted) throw new Error('interrupted');
  const logPath = join(tmpdir(), `pilotlight-bench-${name}-${process.pid}.log`);
  const fd = openSync(logPath, 'w');
  const child = spawn(command, args, { env, stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  logs.add(logPath);
  const proc = { name, child, logPath, exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))) };
  running.add(proc);
  child.once('exit', () => running.delete(proc));
  return proc;
}

async function stop(proc) {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  try {
    process.kill(-proc.child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const done = await Promise.race([proc.exited.then(() => true), sleep(10_000).then(() => false)]);
  if (!done) {
    try {
      process.kill(-proc.child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await proc.exited;
  }
  // Reap anything left in the group (an upstream its watchdog failed to stop).
  try {
    process.kill(-proc.child.pid, 'SIGKILL');
  } catch {
    // the group is empty: good
  }
}

function tail(path, lines = 20) {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

function countLines(path) {
  try {
    const text = readFileSync(path, 'utf8');
    return text === '' ? 0 : text.split('\n').length - 1;
  } catch {
    return 0;
  }
}

async function waitUntilServing(proc, port) {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) break;
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1_000) });
      const text = await res.text();
      if (res.status === 200 && text === 'hello world') return;
    } catch {
      // not yet
    }
    await sleep(100);
  }
  throw new Error(`${proc.name} did not serve "hello world" on port ${port}; its log:\n${tail(proc.logPath)}`);
}

// --- targets -----------------------------------------------------------------------------------

async function startTarget(target) {
  const upstreamPort = await freePort();
  const nodeUpstream = [process.execPath, UPSTREAM];
  if (target === 'direct') {
    const [cmd, args] = pinned(sutCpus, process.execPath, [UPSTREAM]);
    const proc = start(target, cmd, args, cleanEnv({ PORT: String(upstreamPort) }));
    await waitUntilServing(proc, upstreamPort);
    return { proc, port: upstreamPort, headers: [] };
  }
  const port = await freePort();
  if (target === 'pilotlight') {
    // Through the bin's shebang, so the watchdog runs with the V8 flags it runs with in the images.
    const [cmd, args] = pinned(sutCpus, PILOTLIGHT, ['--port', String(port), '--', ...nodeUpstream]);
    const proc = start(
      target,
      cmd,
      args,
      cleanEnv({
        PORT: String(upstreamPort), // read by upstream.mjs; pilotlight's own port comes from --port
        PILOTLIGHT_MODE: 'http',
        PILOTLIGHT_UPSTREAM_URL: `http://127.0.0.1:${upstreamPort}`,
        PILOTLIGHT_HOST: '127.0.0.1',
        PILOTLIGHT_LOG_LEVEL: 'warn',
        PILOTLIGHT_MAX_INFLIGHT: '0',
        PILOTLIGHT_EXEC_TIMEOUT: '10s',
        PILOTLIGHT_READ_TIMEOUT: '10s',
        PILOTLIGHT_WRITE_TIMEOUT: '10s',
        PILOTLIGHT_SUPPRESS_LOCK: 'true',
      }),
    );
    await waitUntilServing(proc, port);
    return { proc, port, headers: [] };
  }
  // of-watchdog and of-watchdog-quiet: the same process; -quiet only changes the requests.
  // Another of-watchdog (another benchmark on this machine) may hold it for a while.
  const portDeadline = Date.now() + Math.max(quietWait, 60) * 1000;
  let toldPort = false;
  while (!(await portIsFree(OF_WATCHDOG_METRICS_PORT))) {
    if (Date.now() > portDeadline) {
      throw new Error(`of-watchdog needs port ${OF_WATCHDOG_METRICS_PORT} for its metrics server and it is taken`);
    }
    if (!toldPort) console.log(`  (waiting for port ${OF_WATCHDOG_METRICS_PORT}, which of-watchdog needs, to be free)`);
    toldPort = true;
    await sleep(1_000);
  }
  const [cmd, args] = pinned(sutCpus, ofWatchdog, []);
  const proc = start(
    target,
    cmd,
    args,
    cleanEnv({
      PORT: String(upstreamPort), // read by upstream.mjs (of-watchdog reads lower-case `port`)
      mode: 'http',
      port: String(port),
      upstream_url: `http://127.0.0.1:${upstreamPort}`,
      // of-watchdog splits fprocess on spaces; the paths here have none (checked below).
      fprocess: nodeUpstream.join(' '),
      max_inflight: '0', // its default; 0 = no limiter middleware
      exec_timeout: '10s', // its default is 30s; 10s matches pilotlight's default
      read_timeout: '10s',
      write_timeout: '10s',
      suppress_lock: 'true',
      prefix_logs: 'true',
      healthcheck_interval: '1s', // only its SIGTERM delay before draining (default: write_timeout)
    }),
  );
  await waitUntilServing(proc, port);
  return { proc, port, headers: target === 'of-watchdog-quiet' ? [`User-Agent: ${KUBE_PROBE_UA}`] : [] };
}

// --- wrk ---------------------------------------------------------------------------------------

function toMs(value) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(value);
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  return { us: n / 1000, ms: n, s: n * 1000, m: n * 60_000 }[m[2]];
}

function parseWrk(text) {
  const pct = (p) => {
    const m = new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(text);
    return m ? toMs(m[1]) : Number.NaN;
  };
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  const total = /(\d+) requests in/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  return {
    rps: rps ? Number(rps[1]) : Number.NaN,
    requests: total ? Number(total[1]) : 0,
    p50: pct(50),
    p75: pct(75),
    p90: pct(90),
    p99: pct(99),
    errors: (non2xx ? Number(non2xx[1]) : 0) + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
  };
}

function runWrk(port, conns, seconds, headers) {
  const args = ['-t1', `-c${conns}`, `-d${seconds}s`, '--latency', '--timeout', '5s'];
  for (const h of headers) args.push('-H', h);
  args.push(`http://127.0.0.1:${port}/`);
  const [cmd, full] = pinned(wrkCpus, wrk, args);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, full, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`wrk exited with ${code}:\n${out}`))));
  });
}

// --- the run -----------------------------------------------------------------------------------

function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? 'unknown';
  const wrkVersion = spawnSync(wrk, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0].trim();
  let ofVersion;
  if (ofWatchdog && existsSync(ofWatchdog)) {
    const r = spawnSync(ofWatchdog, ['--version'], { encoding: 'utf8', env: cleanEnv(), timeout: 5_000 });
    ofVersion = `${r.stdout}${r.stderr}`.replace(/^\S+ \S+ /, '').trim().replace(/\s+/g, ' ');
  }
  // Which watchdog was measured: the commit, and whether watchdog/ had uncommitted changes.
  const git = (args) => spawnSync('git', ['-C', ROOT, ...args], { encoding: 'utf8' });
  const head = git(['rev-parse', '--short', 'HEAD']).stdout?.trim() || 'unknown';
  const dirty = (git(['status', '--porcelain', '--', 'watchdog']).stdout ?? '').trim() !== '';
  return {
    nproc,
    cpu: model,
    pilotlight: `${head}${dirty ? ' + uncommitted changes in watchdog/' : ''}`,
    node: process.version,
    wrk: wrkVersion,
    ofWatchdog: ofVersion ? `${ofWatchdog} (${ofVersion}${process.env.OF_WATCHDOG_COMMIT ? `, commit ${process.env.OF_WATCHDOG_COMMIT}` : ''})` : 'not found',
    ofWatchdogCommit: process.env.OF_WATCHDOG_COMMIT,
  };
}

function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

const fmtMs = (ms) => (ms < 1 ? `${Math.round(ms * 1000)} µs` : `${ms.toFixed(2)} ms`);
const fmtRps = (r) => Math.round(r).toLocaleString('en-US');

async function main() {
  const info = machine();
  console.log(`machine: ${info.nproc} CPUs, ${info.cpu}; node ${info.node}; ${info.wrk}`);
  console.log(`pilotlight: ${info.pilotlight}; of-watchdog: ${info.ofWatchdog}`);
  console.log(
    `plan: targets ${targets.join(', ')}; connections ${connections.join(', ')}; ${rounds} rounds × ${duration} s ` +
      `(+${warmup} s warm-up per start); pin=${opts.pin}` +
      (wrkCpus ? ` (wrk on CPU ${wrkCpus}${sutCpus ? `, proxy+upstream on CPU ${sutCpus}` : ''})` : ''),
  );
  /** samples[target][conns] = [{rps, p50, p99, ...}] */
  const samples = Object.fromEntries(targets.map((t) => [t, Object.fromEntries(connections.map((c) => [c, []]))]));
  for (let round = 1; round <= rounds; round++) {
    for (const target of targets) {
      const { proc, port, headers } = await startTarget(target);
      try {
        if (warmup > 0) await runWrk(port, Math.max(...connections), warmup, headers);
        for (const conns of connections) {
          const pids = [proc.child.pid, ...descendants(proc.child.pid)];
          await waitForQuiet(pids);
          const snapBefore = cpuSnapshot(pids);
          const before = pids.map(cpuMs);
          const linesBefore = countLines(proc.logPath);
          const result = parseWrk(await runWrk(port, conns, duration, headers));
          const after = pids.map(cpuMs);
          result.foreignCpu = foreignCpus(snapBefore, cpuSnapshot(pids));
          // pids[0] is the proxy (or, for direct, the upstream); the rest are its children.
          const proxyCpu = after[0] - before[0];
          const childCpu = after.slice(1).reduce((a, b) => a + b, 0) - before.slice(1).reduce((a, b) => a + b, 0);
          result.cpuUsPerReq = {
            proxy: target === 'direct' ? 0 : (proxyCpu * 1000) / result.requests,
            upstream: ((target === 'direct' ? proxyCpu : childCpu) * 1000) / result.requests,
          };
          result.logLines = countLines(proc.logPath) - linesBefore;
          samples[target][conns].push(result);
          console.log(
            `round ${round} ${target.padEnd(17)} c=${String(conns).padStart(3)}  ${fmtRps(result.rps).padStart(7)} req/s  ` +
              `p50 ${fmtMs(result.p50).padStart(9)}  p99 ${fmtMs(result.p99).padStart(9)}  ` +
              `cpu/req proxy ${result.cpuUsPerReq.proxy.toFixed(0)} µs upstream ${result.cpuUsPerReq.upstream.toFixed(0)} µs` +
              (result.errors ? `  ERRORS ${result.errors}` : '') +
              (result.foreignCpu >= 0.1 ? `  [other load ${(result.foreignCpu * 100).toFixed(0)}% CPU]` : '') +
              (result.logLines > 10 ? `  (${result.logLines} log lines)` : ''),
          );
        }
      } finally {
        await stop(proc);
      }
    }
  }

  const rows = [];
  for (const conns of connections) {
    for (const target of targets) {
      const s = samples[target][conns];
      rows.push({
        target,
        connections: conns,
        rps: median(s.map((x) => x.rps)),
        rpsMin: Math.min(...s.map((x) => x.rps)),
        rpsMax: Math.max(...s.map((x) => x.rps)),
        p50: median(s.map((x) => x.p50)),
        p99: median(s.map((x) => x.p99)),
        proxyCpuUs: median(s.map((x) => x.cpuUsPerReq.proxy)),
        upstreamCpuUs: median(s.map((x) => x.cpuUsPerReq.upstream)),
        errors: s.reduce((a, x) => a + x.errors, 0),
        logLinesPerReq: median(s.map((x) => x.logLines / x.requests)),
        maxForeignCpu: Math.max(...s.map((x) => x.foreignCpu)),
      });
    }
  }

  console.log(`\nMedian of ${rounds} rounds (req/s range in brackets):\n`);
  console.log('| target | connections | req/s | p50 | p99 | proxy CPU/req | upstream CPU/req |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(
      `| ${r.target} | ${r.connections} | ${fmtRps(r.rps)} (${fmtRps(r.rpsMin)}–${fmtRps(r.rpsMax)}) | ${fmtMs(r.p50)} | ${fmtMs(r.p99)} | ` +
        `${r.target === 'direct' ? '—' : `${r.proxyCpuUs.toFixed(0)} µs`} | ${r.upstreamCpuUs.toFixed(0)} µs |`,
    );
  }
  for (const conns of connections) {
    const pl = rows.find((r) => r.target === 'pilotlight' && r.connections === conns);
    for (const of of ['of-watchdog', 'of-watchdog-quiet']) {
      const o = rows.find((r) => r.target === of && r.connections === conns);
      if (pl && o) {
        console.log(
          `c=${conns}: pilotlight / ${of}: ${(pl.rps / o.rps).toFixed(2)}× req/s, p99 ${fmtMs(pl.p99)} vs ${fmtMs(o.p99)}`,
        );
      }
    }
  }
  const noisy = rows.filter((r) => r.maxForeignCpu >= 0.1);
  if (noisy.length) {
    console.log(`\nNOTE: other processes used ≥ 10% of a CPU during some runs of ${noisy.map((r) => `${r.target} c=${r.connections}`).join(', ')}`);
  }
  const errors = rows.filter((r) => r.errors > 0);
  if (errors.length) console.log(`\nWARNING: errors in ${errors.map((r) => `${r.target} c=${r.connections}`).join(', ')}`);

  const out = opts.out ?? join(HERE, 'results', `proxy-overhead-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(join(out, '..'), { recursive: true });
  writeFileSync(
    out,
    `${JSON.stringify({ machine: info, options: { duration, warmup, rounds, connections, pin: opts.pin, targets }, rows, samples }, null, 2)}\n`,
  );
  console.log(`\nresults: ${out}`);
}

async function cleanup() {
  await Promise.all([...running].map(stop));
}
function interrupt(code) {
  interrupted = true;
  void cleanup().then(() => process.exit(code));
}
process.on('SIGINT', () => interrupt(130));
process.on('SIGTERM', () => interrupt(143));
main().then(async () => {
  await cleanup();
  for (const path of logs) rmSync(path, { force: true });
}, async (error) => {
  console.error(`proxy-overhead: ${error instanceof Error ? error.message : error}`);
  await cleanup();
  process.exit(1);
});
