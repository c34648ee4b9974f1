// How a Node function is best served, and what the SDK costs. One run, same machine, wrk:
//   node-http      the hello handler on plain node:http (the floor)
//   ff             the same handler on Google's Functions Framework (express)
//   sdk-direct     hello-ts on the SDK's stack, in the process that owns the client socket ("no hop")
//   pilotlight     hello-ts in the Node runtime behind the watchdog: client → watchdog → Unix socket → runtime
//   pilotlight-tcp the watchdog in http mode proxying over loopback TCP to sdk-direct (the hop over TCP)
//
//   node bench/serving.mjs [--duration 10] [--connections 50] [--rounds 3] [--only a,b]
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compare, freePort, launch } from './wrk.mjs';

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

const TARGETS = {
  'node-http': async (port) => [launch(env, process.execPath, [here('fixtures/node-hello.mjs')], { PORT: String(port) })],
  ff: async (port) => [
    launch(env, process.execPath, [here('../node_modules/@google-cloud/functions-framework/build/src/main.js'), '--target=hello', `--port=${port}`, `--source=${here('fixtures/ff-hello')}`], {}),
  ],
  'sdk-direct': async (port) => [launch(env, process.execPath, [here('fixtures/sdk-direct.mjs')], { PORT: String(port) })],
  pilotlight: async (port) => [
    launch(env, process.execPath, [here('../watchdog/bin/pilotlight.js')], {
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
      launch(env, process.execPath, [here('../watchdog/bin/pilotlight.js'), '--', process.execPath, here('fixtures/sdk-direct.mjs')], {
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

const chosen = values.only ? Object.fromEntries(values.only.split(',').map((name) => [name, TARGETS[name]])) : TARGETS;
await compare(chosen, { rounds: Number(values.rounds), duration: Number(values.duration), connections: Number(values.connections) });
