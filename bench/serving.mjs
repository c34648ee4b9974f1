// How a Node function is best served, and what the SDK costs. One run, same machine, wrk:
//   node-http      the hello handler on plain node:http (the floor)
//   ff             the same handler on Google's Functions Framework (express)
//   sdk-direct     hello-ts on the SDK's stack, in the process that owns the client socket ("no hop")
//   pilotlight     hello-ts in the Node runtime behind the watchdog: client → watchdog → Unix socket → runtime
//   pilotlight-tcp the watchdog in http mode proxying over loopback TCP to sdk-direct (the hop over TCP)
//
//   node bench/serving.mjs [--duration 10] [--connections 50] [--rounds 3] [--only a,b]
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
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
    only: { type: 'string' },
  },
});
const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const { NODE_EXTRA_CA_CERTS: _unused, ...baseEnv } = process.env;
// The hello function logs one line per call at info; the comparison is of the serving stack.
const env = { ...baseEnv, PILOTLIGHT_FUNCTION_LOG_LEVEL: 'warn', NODE_ENV: 'production' };

async function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function launch(command, args, extraEnv) {
  return spawn(command, args, { env: { ...env, ...extraEnv }, stdio: ['ignore', 'ignore', 'inherit'] });
}

async function waitFor(port) {
  for (let i = 0; i < 500; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/`, { method: "POST", headers: { name: "world" } }).then((r) => r.status === 200, (e) => (i === 499 && console.error(e.cause ?? e), false));
    if (ok) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`nothing answered 200 on ${port}`);
}

const TARGETS = {
  'node-http': async (port) => [launch(process.execPath, [here('fixtures/node-hello.mjs')], { PORT: String(port) })],
  ff: async (port) => [
    launch(process.execPath, [here('../node_modules/@google-cloud/functions-framework/build/src/main.js'), '--target=hello', `--port=${port}`, `--source=${here('fixtures/ff-hello')}`], {}),
  ],
  'sdk-direct': async (port) => [launch(process.execPath, [here('fixtures/sdk-direct.mjs')], { PORT: String(port) })],
  pilotlight: async (port) => [
    launch(process.execPath, [here('../watchdog/bin/pilotlight.js')], {
      PILOTLIGHT_PORT: String(port),
      PILOTLIGHT_HOST: '127.0.0.1',
      PILOTLIGHT_RUNTIME: 'node',
      PILOTLIGHT_FUNCTION_DIR: here('../examples/hello-ts'),
      PILOTLIGHT_SUPPRESS_LOCK: 'true',
      PILOTLIGHT_LOG_LEVEL: 'warn',
    }),
  ],
  'pilotlight-tcp': async (port) => {
    const upstream = await freePort();
    return [
      launch(process.execPath, [here('../watchdog/bin/pilotlight.js'), '--', process.execPath, here('fixtures/sdk-direct.mjs')], {
        PORT: String(upstream),
        PILOTLIGHT_PORT: String(port),
        PILOTLIGHT_HOST: '127.0.0.1',
        PILOTLIGHT_UPSTREAM_URL: `http://127.0.0.1:${upstream}`,
        PILOTLIGHT_SUPPRESS_LOCK: 'true',
        PILOTLIGHT_LOG_LEVEL: 'warn',
      }),
    ];
  },
};

const lua = join(mkdtempSync(join(tmpdir(), 'pl-bench-')), 'post.lua');
writeFileSync(lua, 'wrk.method = "POST"\nwrk.headers["name"] = "world"\n');

function toMs(text) {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text);
  if (!match) return Number.NaN;
  return Number(match[1]) * { us: 0.001, ms: 1, s: 1000 }[match[2]];
}

function wrk(port, seconds, connections) {
  const out = spawnSync('wrk', ['-t', '1', '-c', String(connections), '-d', `${seconds}s`, '--latency', '-s', lua, `http://127.0.0.1:${port}/`], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(out.stderr);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out.stdout)?.[1]);
  const p50 = toMs(/^\s+50%\s+(\S+)/m.exec(out.stdout)?.[1] ?? '');
  const p99 = toMs(/^\s+99%\s+(\S+)/m.exec(out.stdout)?.[1] ?? '');
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out.stdout)?.[1] ?? '0';
  return { rps, p50, p99, errors: Number(errors) };
}

async function stop(procs) {
  await Promise.all(procs.map((p) => new Promise((resolve) => (p.exitCode !== null ? resolve() : (p.once('exit', resolve), p.kill('SIGTERM'))))));
}

const names = values.only ? values.only.split(',') : Object.keys(TARGETS);
const results = Object.fromEntries(names.map((n) => [n, []]));
for (let round = 0; round < Number(values.rounds); round++) {
  for (const name of names) {
    const port = await freePort();
    const procs = await TARGETS[name](port);
    await waitFor(port);
    wrk(port, 2, Number(values.connections)); // warm-up
    results[name].push(wrk(port, Number(values.duration), Number(values.connections)));
    await stop(procs);
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`| target | req/s | p50 ms | p99 ms | non-2xx |`);
console.log(`|---|---|---|---|---|`);
for (const name of names) {
  const runs = results[name];
  console.log(
    `| ${name} | ${median(runs.map((r) => r.rps)).toFixed(0)} | ${median(runs.map((r) => r.p50)).toFixed(2)} | ${median(runs.map((r) => r.p99)).toFixed(2)} | ${runs.reduce((a, r) => a + r.errors, 0)} |`,
  );
}
console.log(JSON.stringify(results));
