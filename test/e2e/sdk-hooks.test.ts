import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SDK_FIXTURES, startGeneric, startSpecialized } from '../support/sdk-helpers.js';
import { specialize } from '../support/specialize.js';
import { killAll, type LogRecord, type RunningWatchdog } from '../support/watchdog.js';

const REPO = join(SDK_FIXTURES, '..', '..', '..');
const scratch = mkdtempSync(join(tmpdir(), 'pilotlight-sdk-hooks-'));

afterAll(async () => {
  await killAll();
  rmSync(scratch, { recursive: true, force: true });
});

/** What the hook fixtures' pre-stop hooks write. */
interface Marker {
  hook: string;
  remainingMs: number;
  deadline: number;
  pid: number;
}

describe('initializer hooks', () => {
  it.each([
    { form: 'controller @Initializer', dir: 'hooks-controller' },
    { form: 'plain `initialize` export', dir: 'hooks-plain' },
  ])('a $form runs once, before the instance serves', async ({ dir }) => {
    const watchdog = await startSpecialized({ path: `${SDK_FIXTURES}${dir}`, function: dir, env: { MARKER_FILE: '/dev/null' } });
    const first = await fetch(`${watchdog.url}/`);
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ initialized: true, initializeCalls: 1 });
    const second = await fetch(`${watchdog.url}/`);
    expect(await second.json()).toMatchObject({ initialized: true, initializeCalls: 1 });
    await watchdog.kill();
  });

  it.each([
    { form: 'controller @Initializer', dir: 'init-throws', message: 'the database is unreachable' },
    { form: 'plain `initialize` export', dir: 'init-throws-plain', message: 'the config file is missing' },
  ])('a $form that throws fails the specialization with 422; the instance stays generic and takes good code', async ({ dir, message }) => {
    const watchdog = await startGeneric();
    const failed = await specialize(watchdog, { path: `${SDK_FIXTURES}${dir}`, function: 'broken' });
    expect(failed.status).toBe(422);
    expect(failed.body).toMatchObject({ code: 'PILOTLIGHT_LOAD_FAILED', reason: 'PILOTLIGHT_INITIALIZER_FAILED' });
    expect(failed.body.message).toContain(message);
    const status = (await (await fetch(`${watchdog.url}/_/status`)).json()) as Record<string, unknown>;
    expect(status.state).toBe('generic');
    // The broken code serves nothing.
    const refused = await fetch(`${watchdog.url}/`);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('x-pilotlight-error')).toBe('PILOTLIGHT_NOT_READY');

    // Retried at once with good code, as a pool manager would.
    const good = await specialize(watchdog, { path: `${SDK_FIXTURES}context-plain`, function: 'good' });
    expect(good.status, JSON.stringify(good.body)).toBe(200);
    expect(good.body).toMatchObject({ state: 'ready' });
    const served = await fetch(`${watchdog.url}/`);
    expect(served.status).toBe(200);
    expect(await served.json()).toMatchObject({ functionName: 'good', functionVersion: '4.5.6' });
    await watchdog.kill();
  });
});

describe('pre-stop hooks', () => {
  it.each([
    { form: 'controller @PreStop', dir: 'hooks-controller', hook: 'controller' },
    { form: 'plain `preStop` export', dir: 'hooks-plain', hook: 'plain' },
  ])('a $form runs on SIGTERM with the grace time left', async ({ dir, hook }) => {
    const graceMs = 8_000;
    const marker = join(scratch, `${dir}-marker.json`);
    const watchdog = await startSpecialized(
      { path: `${SDK_FIXTURES}${dir}`, function: dir, env: { MARKER_FILE: marker } },
      { PILOTLIGHT_GRACE_PERIOD: `${graceMs}ms` },
    );
    expect((await fetch(`${watchdog.url}/`)).status).toBe(200);
    expect(existsSync(marker)).toBe(false);

    watchdog.process.kill('SIGTERM');
    const { code } = await watchdog.exited;
    expect(code).toBe(0);
    expect(existsSync(marker)).toBe(true);
    const written = JSON.parse(readFileSync(marker, 'utf8')) as Marker;
    expect(written.hook).toBe(hook);
    expect(written.remainingMs).toBeGreaterThan(0);
    expect(written.remainingMs).toBeLessThanOrEqual(graceMs);
    // The hook's log line was not lost on the way out.
    expect(watchdog.logs.some((r) => r.stream === 'stdout' && r.msg === `${hook} preStop ran`)).toBe(true);
  });
});

/** A 500 body must say nothing about the failure. */
function expectOpaque500(body: Record<string, unknown>): void {
  const text = JSON.stringify(body);
  expect(text).not.toContain('hunter2');
  expect(text).not.toContain('at ');
  expect(body.stack).toBeUndefined();
}

describe.each([
  { form: 'controller', dir: 'errors-controller', file: 'errors-controller/index.js' },
  { form: 'plain handler', dir: 'errors-plain', file: 'errors-plain/index.js' },
])('errors a $form throws', ({ dir, file }) => {
  let watchdog: RunningWatchdog;
  let debug: RunningWatchdog;

  beforeAll(async () => {
    [watchdog, debug] = await Promise.all([
      startSpecialized({ path: `${SDK_FIXTURES}${dir}`, function: `${dir}` }),
      startSpecialized({ path: `${SDK_FIXTURES}${dir}`, function: `${dir}-debug`, env: { PILOTLIGHT_DEBUG: 'true' } }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([watchdog?.kill(), debug?.kill()]);
  });

  it("routing-controllers' NotFoundError is a 404 with its message", async () => {
    const res = await fetch(`${watchdog.url}/missing`);
    expect(res.status).toBe(404);
    // The function's own answer, not a watchdog error.
    expect(res.headers.get('x-pilotlight-error')).toBeNull();
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ name: 'NotFoundError', message: 'no widget 42' });
    expect(body.stack).toBeUndefined();
  });

  it('BadRequestError is a 400 with its message', async () => {
    const res = await fetch(`${watchdog.url}/invalid`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ name: 'BadRequestError', message: 'the widget is malformed' });
  });

  it('a plain Error is a 500 without stack or message; the log has both, at level error', async () => {
    const res = await fetch(`${watchdog.url}/boom`, { headers: { 'x-request-id': `boom-${dir}` } });
    expect(res.status).toBe(500);
    expect(res.headers.get('x-pilotlight-error')).toBeNull();
    expect(res.headers.get('content-type')).toContain('application/json');
    expectOpaque500((await res.json()) as Record<string, unknown>);

    const line = await watchdog.waitForLog((r: LogRecord) => r.stream === 'stdout' && r.level === 'error' && r.request_id === `boom-${dir}`);
    const err = line.err as { message?: string; stack?: string } | undefined;
    expect(err?.message).toBe('the database password is hunter2');
    expect(err?.stack).toContain('the database password is hunter2');
    expect(err?.stack).toContain(file);
    expect(line.function).toBe(dir);
  });

  it('with PILOTLIGHT_DEBUG=true in the function env the 500 body has the stack', async () => {
    const res = await fetch(`${debug.url}/boom`);
    expect(res.status).toBe(500);
    const body = (await res.json()) as { message?: string; stack?: string };
    expect(body.stack).toContain('the database password is hunter2');
    expect(body.stack).toContain(file);
    expect(body.message).toBe('the database password is hunter2');
  });

  it("an error that only carries a status (an HTTP client's) keeps it, but not its message; the log has it, at warn", async () => {
    const res = await fetch(`${watchdog.url}/downstream`, { headers: { 'x-request-id': `downstream-${dir}` } });
    expect(res.status).toBe(404);
    expect(res.headers.get('x-pilotlight-error')).toBeNull();
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ name: 'Error', message: 'Not Found' });
    expect(text).not.toContain('s3cret');

    const line = await watchdog.waitForLog((r: LogRecord) => r.stream === 'stdout' && r.request_id === `downstream-${dir}`);
    expect(line.level).toBe('warn');
    expect(line.status).toBe(404);
    expect((line.err as { message?: string }).message).toContain('inventory.internal');
  });

  it('an http-errors error meant for the client keeps its status, message and the headers it asks for', async () => {
    const res = await fetch(`${watchdog.url}/throttled`, { headers: { 'x-request-id': `throttled-${dir}` } });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    // A header value no response can carry is left out, not a reason to fail the answer.
    expect(res.headers.get('x-bad')).toBeNull();
    expect(await res.json()).toMatchObject({ name: 'Error', message: 'slow down' });
  });

  it('PILOTLIGHT_DEBUG leaves HTTP errors as they are, apart from the stack', async () => {
    const res = await fetch(`${debug.url}/missing`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ name: 'NotFoundError', message: 'no widget 42' });
  });
});

describe('a controller that sets headers, then throws', () => {
  it('answers the error without them', async () => {
    const watchdog = await startSpecialized({ path: `${SDK_FIXTURES}errors-controller`, function: 'errors-controller-headers' });
    try {
      const res = await fetch(`${watchdog.url}/cached-then-fails`);
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ name: 'NotFoundError', message: 'no widget after all' });
      // An error cached for an hour, or carrying the answer's own headers, would be worse than the error.
      expect(res.headers.get('cache-control')).toBeNull();
      expect(res.headers.get('x-widget')).toBeNull();
      expect(res.headers.get('content-type')).toContain('application/json');
    } finally {
      await watchdog.kill();
    }
  });
});

describe('a function that ships its own copy of routing-controllers', () => {
  it('is served with the runtime copy: decorators register, HTTP errors keep their status', async () => {
    const dir = join(scratch, 'own-copy');
    cpSync(join(REPO, 'node_modules', 'routing-controllers'), join(dir, 'node_modules', 'routing-controllers'), { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'own-copy', version: '9.9.9', main: 'index.cjs' }));
    writeFileSync(
      join(dir, 'index.cjs'),
      `// CommonJS, requiring routing-controllers from its own node_modules (or so it thinks).
const { BadRequestError, Get, JsonController } = require('routing-controllers');

class OwnCopyFunction {
  where() {
    return { resolved: require.resolve('routing-controllers') };
  }

  bad() {
    throw new BadRequestError('bring your own copy');
  }
}

const method = (name) => [OwnCopyFunction.prototype, name, Object.getOwnPropertyDescriptor(OwnCopyFunction.prototype, name)];
JsonController('/')(OwnCopyFunction);
Get('/where')(...method('where'));
Get('/bad')(...method('bad'));
module.exports = { OwnCopyFunction };
`,
    );
    const watchdog = await startGeneric();
    const answer = await specialize(watchdog, { path: dir, function: 'own-copy' });
    // Found by its @JsonController metadata: the decorators wrote to the runtime's store.
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(answer.body.routes).toEqual(expect.arrayContaining(['GET /where', 'GET /bad']));

    const where = (await (await fetch(`${watchdog.url}/where`)).json()) as { resolved: string };
    expect(where.resolved.startsWith(dir)).toBe(false);
    expect(where.resolved).toContain(join('node_modules', 'routing-controllers'));

    const bad = await fetch(`${watchdog.url}/bad`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ name: 'BadRequestError', message: 'bring your own copy' });
    await watchdog.kill();
  });
});
