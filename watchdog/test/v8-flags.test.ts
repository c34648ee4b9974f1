import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NODE_POOL_FLAGS } from '../src/runners/create.js';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

/** The flags of the watchdog bin's shebang (`#!/usr/bin/env -S node --flag …`). */
function shebangFlags(): string[] {
  const shebang = read('watchdog/bin/pilotlight.js').split('\n')[0] as string;
  expect(shebang.startsWith('#!/usr/bin/env -S node ')).toBe(true);
  return shebang.split(' ').slice(3);
}

/** The flags between `node` and the script in a Dockerfile's exec-form ENTRYPOINT. */
function entrypointFlags(dockerfile: string): string[] {
  const line = read(dockerfile)
    .split('\n')
    .find((l) => l.startsWith('ENTRYPOINT '));
  expect(line, `${dockerfile} has an exec-form ENTRYPOINT`).toBeDefined();
  const argv = JSON.parse((line as string).slice('ENTRYPOINT '.length)) as string[];
  const node = argv.indexOf('node');
  expect(node, `${dockerfile} starts node`).toBeGreaterThanOrEqual(0);
  return argv.slice(node + 1).filter((arg) => arg.startsWith('--'));
}

// V8 takes these flags only on the command line, so they are written wherever a Node process of
// Pilotlight's is started; one place left behind silently loses what they keep warm.
describe('the V8 flags are the same wherever Pilotlight starts the watchdog', () => {
  it('the bin shebang carries the runtime flags, and --no-lazy', () => {
    expect(shebangFlags()).toEqual([...NODE_POOL_FLAGS, '--no-lazy']);
  });

  it.each(['runtimes/node/Dockerfile', 'runtimes/python/Dockerfile'])('%s starts the watchdog with the shebang flags', (dockerfile) => {
    expect(entrypointFlags(dockerfile)).toEqual(shebangFlags());
  });
});
