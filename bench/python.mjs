// Python hello: Pilotlight's Python runtime behind the watchdog, against of-watchdog in front of a
// Flask app on waitress (the OpenFaaS python3-http template's shape). One run, same machine, wrk.
//
//   pip install -r bench/requirements-python.txt
//   OF_WATCHDOG_BIN=/path/to/of-watchdog node bench/python.mjs [--duration 10] [--connections 50] [--rounds 3]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compare, freePort, launch } from './wrk.mjs';

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

const TARGETS = {
  'pilotlight-python': async (port) => {
    const procs = [
      launch(env, process.execPath, [here('../watchdog/bin/pilotlight.js')], {
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
      launch(env, ofWatchdog, [], {
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

await compare(TARGETS, { rounds: Number(values.rounds), duration: Number(values.duration), connections: Number(values.connections) });
