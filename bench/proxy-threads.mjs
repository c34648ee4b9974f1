#!/usr/bin/env node
// Experiment, not a product path: would the http proxy serve more on 2 CPUs from two threads?
// The watchdog's own request path (Listener with admission, metrics, tracing and the scale
// estimator, in front of Upstream and its connection pool; no process supervision) runs in the
// main thread alone, or in the main thread plus a worker thread accepting on the same listening
// socket. Rounds alternate 1 and 2 threads against one bench/upstream.mjs, wrk pinned to the
// last CPU as in proxy-overhead.mjs `--pin loadgen`; the median of each is printed.
//
//   node bench/proxy-threads.mjs [--rounds 10] [--duration 5]
//
// Needs a built watchdog (`npx tsc -b watchdog`), wrk and taskset. Result: docs/benchmarks.md.
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { isMainThread, Worker, workerData } from 'node:worker_threads';
import pino from 'pino';

const DIST = new URL('../watchdog/dist/', import.meta.url);
const load = (path) => import(new URL(path, DIST).href);

/** One listening server running the watchdog's request path to the upstream on `upstreamPort`. */
async function proxyServer(upstreamPort) {
  const [{ loadConfig }, { Listener }, { Admission }, { Upstream }, { Metrics }, { Tracing }, { LoadEstimator }] = await Promise.all(
    ['config/load.js', 'listener.js', 'admission.js', 'proxy/upstream.js', 'metrics.js', 'tracing.js', 'scale/estimator.js'].map(load),
  );
  const { config } = loadConfig({ PILOTLIGHT_MODE: 'http', PILOTLIGHT_UPSTREAM_URL: `http://127.0.0.1:${upstreamPort}`, PILOTLIGHT_EXEC_TIMEOUT: '10s' }, []);
  const admission = new Admission(config);
  const upstream = new Upstream({
    target: { host: '127.0.0.1', port: upstreamPort, tls: false },
    maxBodySize: config.maxBodySize,
    bufferRequestBody: false,
    keepAlive: config.upstreamKeepAlive,
    blame: async () => undefined,
  });
  const listener = new Listener({
    config,
    lifecycle: { state: 'ready' },
    admission,
    runner: { handle: (req, res, invocation) => upstream.forward(req, res, invocation) },
    logger: pino({ level: 'warn' }),
    metrics: new Metrics({ inflight: () => admission.inflight, queued: () => 0, desiredInstances: () => 1 }),
    tracing: new Tracing(),
    estimator: new LoadEstimator({ capacity: 100, targetUtilization: 0.8, now: () => performance.now() }),
    saturation: () => {},
    control: (_req, res) => res.writeHead(404).end(),
    warmToken: 'bench',
  });
  return createServer({ keepAliveTimeout: config.idleTimeout }, listener.onRequest);
}

if (!isMainThread) {
  (await proxyServer(workerData.upstreamPort)).listen({ fd: workerData.fd });
} else if (process.env.PROXY_THREADS_SERVE) {
  const [port, upstreamPort, threads] = process.env.PROXY_THREADS_SERVE.split(',').map(Number);
  const server = await proxyServer(upstreamPort);
  server.listen(port, '127.0.0.1', () => {
    // The same listening socket in a second event loop: the kernel hands each new connection to
    // whichever thread accepts first.
    for (let i = 1; i < threads; i++) new Worker(new URL(import.meta.url), { workerData: { fd: server._handle.fd, upstreamPort } });
  });
} else {
  const { values: opts } = parseArgs({ options: { rounds: { type: 'string', default: '10' }, duration: { type: 'string', default: '5' } } });
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const lastCpu = String(cpus().length - 1);
  const wrk = (port, seconds) => {
    const out = spawnSync('taskset', ['-c', lastCpu, 'wrk', '-t1', '-c50', `-d${seconds}s`, '--latency', `http://127.0.0.1:${port}/`], { encoding: 'utf8' });
    if (out.status !== 0) throw new Error(`wrk failed: ${out.stderr}`);
    return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out.stdout)?.[1]), p99: /^\s+99%\s+(\S+)/m.exec(out.stdout)?.[1] };
  };
  const [upstreamPort, port] = [13900, 13901];
  const upstream = spawn(process.execPath, [new URL('upstream.mjs', import.meta.url).pathname], { env: { ...env, PORT: String(upstreamPort) }, stdio: 'inherit' });
  await sleep(500);
  const runs = { 1: [], 2: [] };
  for (let round = 1; round <= Number(opts.rounds); round++) {
    for (const threads of [1, 2]) {
      const proxy = spawn(process.execPath, [new URL(import.meta.url).pathname], { env: { ...env, PROXY_THREADS_SERVE: `${port},${upstreamPort},${threads}` }, stdio: 'inherit' });
      await sleep(700);
      wrk(port, 3); // warm-up
      const run = wrk(port, Number(opts.duration));
      runs[threads].push(run.rps);
      console.log(`round ${round} threads=${threads} ${Math.round(run.rps)} req/s p99 ${run.p99}`);
      proxy.kill();
      await new Promise((resolve) => proxy.once('exit', resolve));
    }
  }
  upstream.kill();
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const threads of [1, 2]) console.log(`threads=${threads}: median ${Math.round(median(runs[threads]))} req/s over ${runs[threads].length} runs`);
}
