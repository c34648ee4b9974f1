/**
 * The Node runtime at the protocol level, without a watchdog: what docs/runtime-protocol.md asks
 * of any runtime on its control channel (fd 3), checked the way the Python runtime's own tests do.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const RUNTIME_BIN = fileURLToPath(new URL('../../runtimes/node/bin/runtime.js', import.meta.url));

interface Runtime {
  process: ChildProcess;
  control: Socket;
  /** The next line the runtime sends on its control channel, parsed. */
  next(): Promise<Record<string, unknown>>;
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function startRuntime(): Runtime {
  const dir = mkdtempSync(join(tmpdir(), 'pilotlight-node-runtime-'));
  const { NODE_EXTRA_CA_CERTS: _slow, ...env } = process.env;
  const child = spawn(process.execPath, [RUNTIME_BIN], {
    env: { ...env, PILOTLIGHT_RUNTIME_SOCKET: join(dir, 'runtime.sock'), PILOTLIGHT_CONTROL_FD: '3' },
    stdio: ['ignore', 'ignore', 'inherit', 'pipe'],
  });
  cleanups.push(() => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const control = child.stdio[3] as Socket;
  const lines = createInterface({ input: control })[Symbol.asyncIterator]();
  return {
    process: child,
    control,
    next: async () => {
      const { value, done } = await lines.next();
      if (done) throw new Error(`the runtime closed its control channel (exit ${child.exitCode}, signal ${child.signalCode})`);
      return JSON.parse(value as string) as Record<string, unknown>;
    },
  };
}

describe('Node runtime: control channel', () => {
  it('says hello once pre-started, with protocol, runtime, version and pid', async () => {
    const runtime = startRuntime();
    expect(await runtime.next()).toEqual({ type: 'hello', protocol: 1, runtime: 'node', version: process.version, pid: runtime.process.pid });
  });

  it('skips lines it cannot read and types it does not know, and never answers a wake', async () => {
    const runtime = startRuntime();
    expect((await runtime.next()).type).toBe('hello');
    runtime.control.write('not json\n\n[1,2]\n"ping"\n{"no":"type"}\n{"type":"from-the-future","id":99}\n{"type":"wake"}\n');
    runtime.control.write('{"type":"ping","id":50}\n');
    // None of the lines before the ping gets a reply (nor kills the runtime): the next line is the pong.
    expect(await runtime.next()).toEqual({ type: 'pong', id: 50 });
    runtime.control.write('{"type":"ping","id":51}\n');
    expect(await runtime.next()).toEqual({ type: 'pong', id: 51 });
    expect(runtime.process.exitCode).toBeNull();
  });
});

describe('Node runtime: load', () => {
  const FIXTURE = fileURLToPath(new URL('../fixtures/sdk/context-plain/', import.meta.url));

  it('refuses a malformed load with PILOTLIGHT_BAD_LOAD naming each field, and loads a good one after', async () => {
    const runtime = startRuntime();
    expect((await runtime.next()).type).toBe('hello');
    runtime.control.write(`${JSON.stringify({ type: 'load', id: 1, root: FIXTURE, env: { LEFT_OVER: 'no', EMPTY: null } })}\n`);
    const refused = await runtime.next();
    expect(refused).toMatchObject({ type: 'error', id: 1, code: 'PILOTLIGHT_BAD_LOAD' });
    expect(refused.message).toContain('env "EMPTY" must be a string, not null');

    runtime.control.write(`${JSON.stringify({ type: 'load', id: 2, root: 42, entrypoint: 7, env: ['A=1'] })}\n`);
    const many = await runtime.next();
    expect(many).toMatchObject({ type: 'error', id: 2, code: 'PILOTLIGHT_BAD_LOAD' });
    for (const field of ['root must be', 'entrypoint must be', 'env must be an object']) expect(many.message).toContain(field);

    runtime.control.write(`${JSON.stringify({ type: 'load', id: 3, root: FIXTURE, function: 'after-refusals' })}\n`);
    expect(await runtime.next()).toMatchObject({ type: 'loaded', id: 3, kind: 'handler' });
  });
});
