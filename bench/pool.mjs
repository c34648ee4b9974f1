// Pool benchmark: how fast does a pre-started generic instance become a function?
// Starts generic instances (watchdog + Node runtime, no code), specializes each with
// examples/hello-ts and times specialize-request → first 200 response; then times full cold
// starts of the same function (process start → first 200) for comparison. Each request goes over
// a connection of its own, as the platform's specializer and its router are different clients.
// `--later MS` also times a request sent MS after the first one: the same path with nothing left
// to warm, the floor the first request is measured against. `--cold 0` skips the cold starts.
// `--client raw` (the default) sends each request as prepared bytes on a plain socket, so the
// figure is the instance's time and not the client library's; `--client undici` times the same
// requests made with undici, as a Node platform component would make them.
// `--bins A,B,…` compares watchdog executables (say, copies of watchdog/bin/pilotlight.js with
// other V8 flags in their shebang, next to it): instances and cold starts alternate between them
// within one run, so the host's drift falls on each alike, and each gets its own line. This is
// how the sub-millisecond choices in docs/architecture.md were measured.
//
//   node bench/pool.mjs [--instances 100] [--batch 10] [--cold 20] [--settle 2000] [--later 0] [--client raw] [--bins A,B]
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Client } from 'undici';

const { values } = parseArgs({
  options: {
    instances: { type: 'string', default: '100' },
    batch: { type: 'string', default: '10' },
    cold: { type: 'string', default: '20' },
    settle: { type: 'string', default: '2000' },
    later: { type: 'string', default: '0' },
    client: { type: 'string', default: 'raw' },
    bins: { type: 'string' },
  },
});
const INSTANCES = Number(values.instances);
const BATCH = Number(values.batch);
const COLD = Number(values.cold);
const SETTLE_MS = Number(values.settle);
const LATER_MS = Number(values.later);
const CLIENT = values.client;
if (CLIENT !== 'raw' && CLIENT !== 'undici') throw new Error(`--client is raw or undici, not ${CLIENT}`);
const BINS = values.bins?.split(',').map((bin) => resolve(bin)) ?? [fileURLToPath(new URL('../watchdog/bin/pilotlight.js', import.meta.url))];
const HELLO_DIR = fileURLToPath(new URL('../examples/hello-ts', import.meta.url));

// Every Node start pays for NODE_EXTRA_CA_CERTS; production images don't set it.
const { NODE_EXTRA_CA_CERTS: _unused, ...baseEnv } = process.env;

// Each instance logs to a file, as a container's logs go to its runtime and not to the client:
// the bench process, which is the client, must not spend the timed milliseconds parsing log lines.
const LOGS = mkdtempSync(join(tmpdir(), 'pilotlight-pool-bench-'));
let started = 0;

/** The records of a JSON log file so far. */
function records(file) {
  return readFileSync(file, 'utf8')
    .split('\n')
    .flatMap((line) => {
      try {
        return [JSON.parse(line)];
      } catch {
        return [];
      }
    });
}

/** Starts a watchdog and resolves once it has logged its port (and the state wanted, if any). */
async function startWatchdog(env, wantState) {
  const bin = started % BINS.length;
  const file = join(LOGS, `instance-${started++}.log`);
  const out = openSync(file, 'w');
  // Run through its shebang, which carries the V8 flags the image's entrypoint passes too.
  const child = spawn(BINS[bin], [], {
    env: { ...baseEnv, PILOTLIGHT_PORT: '0', PILOTLIGHT_HOST: '127.0.0.1', PILOTLIGHT_SUPPRESS_LOCK: 'true', PILOTLIGHT_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', out, 'inherit'],
  });
  closeSync(out);
  let exited;
  child.once('exit', (code) => (exited = code));
  for (;;) {
    if (exited !== undefined) throw new Error(`watchdog exited with ${exited}; its log is ${file}`);
    const seen = records(file);
    const port = seen.find((record) => record.port)?.port;
    if (port && (!wantState || seen.some((record) => record.state === wantState))) return { child, port, bin };
    await new Promise((r) => setTimeout(r, 2));
  }
}

const HELLO_REQUEST = { path: '/', method: 'POST', headers: { name: 'world' } };

/** One request: `{ statusCode, text }`. */
async function send(client, options) {
  const { statusCode, body } = await client.request(options);
  return { statusCode, text: await body.text() };
}

/** The bytes of one HTTP/1.1 request, prepared before the clock starts. */
function requestBytes({ path, method, headers = {}, body = '' }) {
  const head = [`${method} ${path} HTTP/1.1`, 'host: 127.0.0.1', `content-length: ${Buffer.byteLength(body)}`];
  for (const [name, value] of Object.entries(headers)) head.push(`${name}: ${value}`);
  return Buffer.from(`${head.join('\r\n')}\r\n\r\n${body}`);
}

/**
 * One request on a plain socket: writes the prepared bytes and reads a response framed by
 * Content-Length (both answers timed here are). Anything else is an error, not a guess.
 */
function sendRaw(port, bytes, clients) {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    clients.push({ close: () => socket.end() });
    socket.setNoDelay(true);
    socket.on('error', reject);
    socket.write(bytes);
    let received = Buffer.alloc(0);
    const onData = (chunk) => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = received.subarray(0, end).toString('latin1');
      const length = /\r\ncontent-length: *(\d+)/i.exec(head);
      if (!length) {
        socket.off('data', onData);
        reject(new Error(`a response without Content-Length: ${head}`));
        return;
      }
      const bodyEnd = end + 4 + Number(length[1]);
      if (received.length < bodyEnd) return;
      socket.off('data', onData);
      resolve({ statusCode: Number(head.slice(9, 12)), text: received.subarray(end + 4, bodyEnd).toString('utf8') });
    };
    socket.on('data', onData);
  });
}

/**
 * One request over a new connection. The connection stays open until `clients` are closed, so
 * that no instance handles a client's leaving while it is timed.
 */
function sendNew(port, request, clients) {
  if (CLIENT === 'raw') return sendRaw(port, request.bytes, clients);
  const client = new Client(`http://127.0.0.1:${port}`);
  clients.push(client);
  return send(client, request.options);
}

/** A request in both forms: options for undici, bytes for the raw socket. */
const prepared = (options) => ({ options, bytes: requestBytes(options) });

const HELLO = prepared(HELLO_REQUEST);
const SPECIALIZE = prepared({
  path: '/_/specialize',
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ path: HELLO_DIR, function: 'hello' }),
});

/** 200 for `hello world`, else the status. */
const helloStatus = ({ statusCode, text }) => (statusCode === 200 && text === 'hello world' ? 200 : statusCode);

const closeAll = (clients) => Promise.all(clients.splice(0).map((client) => client.close()));

function stop(children) {
  return Promise.all(
    children.map(
      (child) =>
        new Promise((resolve) => {
          if (child.exitCode !== null) return resolve();
          child.once('exit', resolve);
          child.kill('SIGTERM');
        }),
    ),
  );
}

function stats(samples) {
  if (samples.length === 0) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
  return { n: sorted.length, p50: at(0.5), p99: at(0.99), min: sorted[0], max: sorted.at(-1), mean };
}

const fmt = (x) => x.toFixed(1);

async function poolRun() {
  const total = [];
  const specialized = [];
  const inWatchdog = [];
  const inRuntime = [];
  const first = [];
  const later = [];
  const totalByBin = BINS.map(() => []);
  for (let done = 0; done < INSTANCES; done += BATCH) {
    const size = Math.min(BATCH, INSTANCES - done);
    const instances = await Promise.all(Array.from({ length: size }, () => startWatchdog({ PILOTLIGHT_RUNTIME: 'node' }, 'generic')));
    // A pool instance waits, started long before it is used: let the batch finish starting (and
    // warming) so one instance's specialization is not timed against nine others still booting.
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const clients = [];
    for (const { port, bin } of instances) {
      const started = performance.now();
      const res = await sendNew(port, SPECIALIZE, clients);
      const answer = JSON.parse(res.text);
      const answered = performance.now();
      if (res.statusCode !== 200) throw new Error(`specialize answered ${res.statusCode}: ${res.text}`);
      const status = helloStatus(await sendNew(port, HELLO, clients));
      const done = performance.now();
      if (status !== 200) throw new Error(`first request answered ${status}`);
      total.push(done - started);
      totalByBin[bin].push(done - started);
      specialized.push(answered - started);
      inWatchdog.push(answer.specializeMs);
      inRuntime.push(answer.loadMs);
      first.push(done - answered);
      if (LATER_MS > 0) {
        await new Promise((r) => setTimeout(r, LATER_MS));
        const sent = performance.now();
        if (helloStatus(await sendNew(port, HELLO, clients)) !== 200) throw new Error('the later request failed');
        later.push(performance.now() - sent);
      }
    }
    await closeAll(clients);
    await stop(instances.map((i) => i.child));
  }
  return {
    total: stats(total),
    totalByBin: totalByBin.map(stats),
    specialized: stats(specialized),
    inWatchdog: stats(inWatchdog),
    inRuntime: stats(inRuntime),
    first: stats(first),
    later: stats(later),
  };
}

async function coldRun() {
  const samples = [];
  const byBin = BINS.map(() => []);
  for (let i = 0; i < COLD; i++) {
    const started = performance.now();
    const { child, port, bin } = await startWatchdog({ PILOTLIGHT_RUNTIME: 'node', PILOTLIGHT_FUNCTION_DIR: HELLO_DIR });
    const client = new Client(`http://127.0.0.1:${port}`);
    // Poll for the first 200: the time a cold request would wait.
    for (;;) {
      const status = await send(client, HELLO_REQUEST).then(helloStatus, () => 0);
      if (status === 200) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    const sample = performance.now() - started;
    samples.push(sample);
    byBin[bin].push(sample);
    await client.close();
    await stop([child]);
  }
  return { all: stats(samples), byBin: byBin.map(stats) };
}

/**
 * Runs the bench's own client code (undici, a connection per request) against a local server
 * before anything is timed: otherwise the first instance's sample pays for compiling the client.
 */
async function warmClient() {
  const server = createServer((req, res) => req.resume().on('end', () => res.end('hello world')));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const clients = [];
  for (let i = 0; i < 20; i++) {
    await sendNew(server.address().port, SPECIALIZE, clients);
    helloStatus(await sendNew(server.address().port, HELLO, clients));
  }
  await closeAll(clients);
  await new Promise((resolve) => server.close(resolve));
}

await warmClient();
const pool = await poolRun();
const { all: cold, byBin: coldByBin } = await coldRun();
const line = (what, s) => `${what}: p50 ${fmt(s.p50)} ms  p99 ${fmt(s.p99)} ms`;
if (pool.total) {
  console.log(`pool: ${INSTANCES} generic instances (batches of ${BATCH}), specialize → first 200, ${CLIENT} client`);
  console.log(`  total (client): p50 ${fmt(pool.total.p50)} ms  p99 ${fmt(pool.total.p99)} ms  mean ${fmt(pool.total.mean)} ms  max ${fmt(pool.total.max)} ms`);
  console.log(`    ${line('specialize answered (client)', pool.specialized)}`);
  console.log(`      ${line('specializeMs (watchdog)', pool.inWatchdog)}`);
  console.log(`        ${line('loadMs (runtime)', pool.inRuntime)}`);
  console.log(`    ${line('first request (client)', pool.first)}`);
  if (pool.later) console.log(`  ${line(`a request ${LATER_MS} ms later, for reference`, pool.later)}`);
}
if (cold) {
  console.log(`cold: ${COLD} full starts, process start → first 200`);
  console.log(`  p50 ${fmt(cold.p50)} ms  p99 ${fmt(cold.p99)} ms  mean ${fmt(cold.mean)} ms`);
  if (pool.total) console.log(`ratio cold/pool p50: ${(cold.p50 / pool.total.p50).toFixed(1)}x`);
}
if (BINS.length > 1) {
  console.log('by watchdog executable (alternating instances):');
  BINS.forEach((bin, i) => {
    const pooled = pool.totalByBin[i];
    const coldOne = coldByBin[i];
    const parts = [pooled && `pool p50 ${fmt(pooled.p50)} ms  mean ${fmt(pooled.mean)} ms  p99 ${fmt(pooled.p99)} ms (${pooled.n})`, coldOne && `cold p50 ${fmt(coldOne.p50)} ms (${coldOne.n})`];
    console.log(`  ${basename(bin)}: ${parts.filter(Boolean).join('; ')}`);
  });
}
console.log(JSON.stringify({ pool, cold, bins: BINS, coldByBin }));
rmSync(LOGS, { recursive: true, force: true });
