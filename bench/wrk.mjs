// What bench/serving.mjs and bench/python.mjs share: free ports, starting and stopping targets,
// one wrk run with a POST body script, and the median over rounds.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A free TCP port on loopback. */
export async function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts a target process with `env` plus `extra`; its stdout is dropped. */
export function launch(env, command, args, extra) {
  return spawn(command, args, { env: { ...env, ...extra }, stdio: ['ignore', 'ignore', 'inherit'] });
}

/** SIGTERMs the processes and waits for them to exit. */
export async function stop(procs) {
  await Promise.all(procs.map((p) => new Promise((resolve) => (p.exitCode !== null ? resolve() : (p.once('exit', resolve), p.kill('SIGTERM'))))));
}

/** Waits until `POST /` with `name: world` answers 200. */
export async function waitForHello(port) {
  for (let i = 0; i < 500; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', headers: { name: 'world' } }).then((r) => r.status === 200, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`nothing answered 200 on ${port}`);
}

const lua = join(mkdtempSync(join(tmpdir(), 'pl-bench-')), 'post.lua');
writeFileSync(lua, 'wrk.method = "POST"\nwrk.headers["name"] = "world"\n');

function toMs(text) {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text);
  return match ? Number(match[1]) * { us: 0.001, ms: 1, s: 1000 }[match[2]] : Number.NaN;
}

/** One wrk run of `POST /` (1 thread): req/s, p50 and p99 in ms, non-2xx count. */
export function wrkPost(port, seconds, connections) {
  const out = spawnSync('wrk', ['-t', '1', '-c', String(connections), '-d', `${seconds}s`, '--latency', '-s', lua, `http://127.0.0.1:${port}/`], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(out.stderr);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out.stdout)?.[1]),
    p50: toMs(/^\s+50%\s+(\S+)/m.exec(out.stdout)?.[1] ?? ''),
    p99: toMs(/^\s+99%\s+(\S+)/m.exec(out.stdout)?.[1] ?? ''),
    errors: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out.stdout)?.[1] ?? 0),
  };
}

/** Runs every target `rounds` times, interleaved, and prints the median table and the raw runs. */
export async function compare(targets, { rounds, duration, connections }) {
  const names = Object.keys(targets);
  const results = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < rounds; round++) {
    for (const name of names) {
      const port = await freePort();
      const procs = await targets[name](port);
      await waitForHello(port);
      wrkPost(port, 2, connections); // warm-up
      results[name].push(wrkPost(port, duration, connections));
      await stop(procs);
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log('| target | req/s | p50 ms | p99 ms | non-2xx |\n|---|---|---|---|---|');
  for (const name of names) {
    const runs = results[name];
    console.log(
      `| ${name} | ${median(runs.map((r) => r.rps)).toFixed(0)} | ${median(runs.map((r) => r.p50)).toFixed(2)} | ${median(runs.map((r) => r.p99)).toFixed(2)} | ${runs.reduce((a, r) => a + r.errors, 0)} |`,
    );
  }
  console.log(JSON.stringify(results));
}
