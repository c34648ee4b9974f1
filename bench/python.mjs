// Python hello: Pilotlight's Python runtime behind the watchdog, against of-watchdog in front of a
// Flask app on waitress (the OpenFaaS python3-http template's shape). One run, same machine, wrk.
//
//   pip install -r bench/requirements-python.txt
//   OF_WATCHDOG_BIN=/path/to/of-watchdog node bench/python.mjs [--duration 10] [--connections 50] [--rounds 3]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '3' },
  },
});
const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const { NODE_EXTRA_CA_CERTS: _unused, ...env } = process.env;
const ofWatchdog = process.env.OF_WATCHDOG_BIN ?? spawnSync('sh', ['-c', 'command -v of-watchdog'], { encoding: 'utf8' }).stdout.trim();

async function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function launch(command, args, extra) {
  return spawn(command, args, { env: { ...env, ...extra }, stdio: ['ignore', 'ignore', 'inherit'] });
}

async function specialize(port) {
  for (let i = 0; i < 500; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/_/specialize`, {
      method: 'POST',
      body: JSON.stringify({ path: here('../examples/python-hello'), function: 'hello' }),
    }).catch(() => undefined);
    if (res?.status === 200) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('the python runtime did not specialize');
}

async function waitFor(port) {
  for (let i = 0; i < 500; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', headers: { name: 'world' } }).then((r) => r.status === 200, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`nothing answered 200 on ${port}`);
}

const TARGETS = {
  'pilotlight-python': async (port) => {
    const procs = [
      launch(process.execPath, [here('../watchdog/bin/pilotlight.js')], {
        PILOTLIGHT_PORT: String(port),
        PILOTLIGHT_HOST: '127.0.0.1',
        PILOTLIGHT_RUNTIME: 'python',
        PILOTLIGHT_SUPPRESS_LOCK: 'true',
        PILOTLIGHT_LOG_LEVEL: 'warn',
        PILOTLIGHT_FUNCTION_LOG_LEVEL: 'warn',
      }),
    ];
    await specialize(port);
    return procs;
  },
  'of-watchdog-flask': async (port) => {
    if (!ofWatchdog) throw new Error('of-watchdog not found: set OF_WATCHDOG_BIN (build it from github.com/openfaas/of-watchdog with go build)');
    const flask = await freePort();
    return [
      launch(ofWatchdog, [], {
        mode: 'http',
        port: String(port),
        upstream_url: `http://127.0.0.1:${flask}`,
        fprocess: `python3 ${here('fixtures/flask-hello/index.py')}`,
        FLASK_PORT: String(flask),
        exec_timeout: '10s',
        read_timeout: '10s',
        write_timeout: '10s',
        suppress_lock: 'true',
      }),
    ];
  },
};

const lua = join(mkdtempSync(join(tmpdir(), 'pl-bench-')), 'post.lua');
writeFileSync(lua, 'wrk.method = "POST"\nwrk.headers["name"] = "world"\n');

function toMs(text) {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text);
  return match ? Number(match[1]) * { us: 0.001, ms: 1, s: 1000 }[match[2]] : Number.NaN;
}

function wrk(port, seconds, connections) {
  const out = spawnSync('wrk', ['-t', '1', '-c', String(connections), '-d', `${seconds}s`, '--latency', '-s', lua, `http://127.0.0.1:${port}/`], { encoding: 'utf8' });
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out.stdout)?.[1]),
    p50: toMs(/^\s+50%\s+(\S+)/m.exec(out.stdout)?.[1] ?? ''),
    p99: toMs(/^\s+99%\s+(\S+)/m.exec(out.stdout)?.[1] ?? ''),
    errors: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out.stdout)?.[1] ?? 0),
  };
}

async function stop(procs) {
  await Promise.all(procs.map((p) => new Promise((resolve) => (p.exitCode !== null ? resolve() : (p.once('exit', resolve), p.kill('SIGTERM'))))));
}

const names = Object.keys(TARGETS);
const results = Object.fromEntries(names.map((n) => [n, []]));
for (let round = 0; round < Number(values.rounds); round++) {
  for (const name of names) {
    const port = await freePort();
    const procs = await TARGETS[name](port);
    await waitFor(port);
    wrk(port, 2, Number(values.connections));
    results[name].push(wrk(port, Number(values.duration), Number(values.connections)));
    await stop(procs);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log('| target | req/s | p50 ms | p99 ms | non-2xx |\n|---|---|---|---|---|');
for (const name of names) {
  const runs = results[name];
  console.log(`| ${name} | ${median(runs.map((r) => r.rps)).toFixed(0)} | ${median(runs.map((r) => r.p50)).toFixed(2)} | ${median(runs.map((r) => r.p99)).toFixed(2)} | ${runs.reduce((a, r) => a + r.errors, 0)} |`);
}
console.log(JSON.stringify(results));
