// Which HTTP client should the watchdog proxy through? The same bare node:http proxy
// (fixtures/proxy-clients.mjs) in front of the same upstream (upstream.mjs), once with undici's
// Pool.dispatch and once with the watchdog's own client; wrk, 1 thread, interleaved rounds.
// docs/architecture.md ("The proxy") has the figures and the decision.
//
//   npx tsc -b && node bench/proxy-clients.mjs [--rounds 3] [--duration 8] [--connections 50]
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compare, freePort, launch } from './wrk.mjs';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '3' }, duration: { type: 'string', default: '8' }, connections: { type: 'string', default: '50' } },
});
const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const { NODE_EXTRA_CA_CERTS: _unused, ...env } = process.env;

const proxy = (client) => async (port) => {
  const upstreamPort = await freePort();
  return [
    launch(env, process.execPath, [here('upstream.mjs')], { PORT: String(upstreamPort) }),
    launch(env, process.execPath, [here('fixtures/proxy-clients.mjs')], { PORT: String(port), UPSTREAM_PORT: String(upstreamPort), CLIENT: client }),
  ];
};

await compare(
  { undici: proxy('undici'), own: proxy('own') },
  { rounds: Number(values.rounds), duration: Number(values.duration), connections: Number(values.connections) },
);
