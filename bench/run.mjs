#!/usr/bin/env node
// Entry point of `npm run bench -w @pilotlight/bench -- <name> [options]`: picks a benchmark by
// name and hands it the remaining arguments.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BENCHMARKS = {
  proxy: 'proxy-overhead.mjs',
  scale: 'scale-experiment.mjs',
  pool: 'pool.mjs',
  serving: 'serving.mjs',
  python: 'python.mjs',
  'proxy-clients': 'proxy-clients.mjs',
};

const [name, ...rest] = process.argv.slice(2);
if (name === undefined || name === '--help' || name === '-h' || !(name in BENCHMARKS)) {
  const known = Object.keys(BENCHMARKS).join(', ');
  if (name !== undefined && name !== '--help' && name !== '-h') console.error(`unknown benchmark "${name}"`);
  console.error(`usage: npm run bench -w @pilotlight/bench -- <${known}> [options]   (<name> --help for options)`);
  process.exit(name === '--help' || name === '-h' ? 0 : 2);
}
const script = fileURLToPath(new URL(BENCHMARKS[name], import.meta.url));
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;
const { status, signal } = spawnSync(process.execPath, [script, ...rest], { stdio: 'inherit', env });
process.exit(status ?? (signal ? 1 : 0));
