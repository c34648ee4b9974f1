/**
 * The Python runtime through the real watchdog: what is specific to it (the scenarios it shares
 * with the Node runtime are in python-conformance.test.ts) — the Python examples, entrypoint
 * forms, decorated routes and schedules, streamed responses and chunked uploads, scale hints,
 * the thread pool versus the event loop, cancellation, crashes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../support/http-helpers.js';
import { EXAMPLES, newTrace, startGeneric, startSpecialized, type SpecializeBody } from '../support/sdk-helpers.js';
import { specialize } from '../support/specialize.js';
import { FIXTURES, killAll, type RunningWatchdog, type StartOptions, startWatchdog } from '../support/watchdog.js';

const PYTHON = { PILOTLIGHT_RUNTIME: 'python' } as const;
const FEATURES = `${FIXTURES}python/features`;
const scratch = mkdtempSync(join(tmpdir(), 'pilotlight-python-'));

afterAll(async () => {
  await killAll();
  rmSync(scratch, { recursive: true, force: true });
});

function python(body: SpecializeBody, env: StartOptions['env'] = {}): Promise<RunningWatchdog> {
  return startSpecialized(body, { ...PYTHON, ...env });
}

/** The pid of the runtime serving the features fixture (its `/pid` route). */
async function runtimePid(watchdog: RunningWatchdog): Promise<number> {
  return ((await (await fetch(`${watchdog.url}/pid`)).json()) as { pid: number }).pid;
}

/** Waits until the function is served again after its runtime went down; the pid serving it. */
function servedAgain(watchdog: RunningWatchdog): Promise<number> {
  return waitUntil(async () => {
    const res = await fetch(`${watchdog.url}/pid`);
    return res.status === 200 ? ((await res.json()) as { pid: number }).pid : undefined;
  }, 'the function is served again', 20_000);
}

/** A path in this file's scratch folder, unique per call. */
function scratchFile(name: string): string {
  return join(mkdtempSync(join(scratch, 'f-')), name);
}

describe('examples/python-hello', () => {
  it('goes generic → specialized by path → answers POST / with name: world, logging with the ids', async () => {
    const watchdog = await startGeneric({ ...PYTHON, PILOTLIGHT_INSTANCE: 'pod-python-hello' });
    expect(((await (await fetch(`${watchdog.url}/_/status`)).json()) as { state: string }).state).toBe('generic');
    const answer = await specialize(watchdog, { path: `${EXAMPLES}python-hello`, function: 'python-hello' });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(answer.body).toMatchObject({ state: 'ready', routes: ['POST /'] });

    const trace = newTrace();
    const res = await fetch(`${watchdog.url}/`, { method: 'POST', headers: { name: 'world', 'x-request-id': 'py-hello-1', traceparent: trace.traceparent } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await res.text()).toBe('hello world');
    const line = await watchdog.waitForLog((r) => r.stream === 'stdout' && r.msg === 'function is running');
    expect(line).toMatchObject({
      name: 'world',
      level: 'info',
      request_id: 'py-hello-1',
      trace_id: trace.traceId,
      function: 'python-hello',
      instance: 'pod-python-hello',
    });
    await watchdog.kill();
  });

  it('is ready at start when given as PILOTLIGHT_FUNCTION_DIR, the runtime still pre-started first', async () => {
    const watchdog = await startWatchdog({
      env: { ...PYTHON, PILOTLIGHT_FUNCTION_DIR: `${EXAMPLES}python-hello`, PILOTLIGHT_ENTRYPOINT: 'main.py', PILOTLIGHT_FUNCTION_NAME: 'hello-at-start' },
    });
    const res = await fetch(`${watchdog.url}/`, { method: 'POST', headers: { name: 'start' } });
    expect(await res.text()).toBe('hello start');
    expect(watchdog.logs.some((r) => r.msg === 'runtime is up' && r.runtime === 'python')).toBe(true);
    await watchdog.kill();
  });
});

describe('examples/python-crud', () => {
  let watchdog: RunningWatchdog;
  beforeAll(async () => {
    watchdog = await python({ path: `${EXAMPLES}python-crud`, function: 'python-crud' });
  });
  afterAll(() => watchdog?.kill());

  const json = (method: string, body: unknown) => ({ method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('creates, reads, updates and deletes, logging each change with the request id', async () => {
    const created = await fetch(`${watchdog.url}/todos`, { ...json('POST', { title: 'water the plants', priority: 2 }), headers: { 'content-type': 'application/json', 'x-request-id': 'crud-create' } });
    expect(created.status).toBe(201);
    const todo = (await created.json()) as { id: number };
    expect(created.headers.get('location')).toBe(`/todos/${todo.id}`);
    expect(await (await fetch(`${watchdog.url}/todos/${todo.id}`)).json()).toEqual(todo);
    const updated = await fetch(`${watchdog.url}/todos/${todo.id}`, json('PUT', { title: 'water the plants', priority: 1, done: true }));
    expect(await updated.json()).toMatchObject({ id: todo.id, priority: 1, done: true });
    expect((await fetch(`${watchdog.url}/todos/${todo.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await fetch(`${watchdog.url}/todos/${todo.id}`)).status).toBe(404);
    const line = await watchdog.waitForLog((r) => r.stream === 'stdout' && r.msg === 'todo created');
    expect(line).toMatchObject({ request_id: 'crud-create', todo_id: todo.id, function: 'python-crud' });
  });

  it('refuses an invalid todo with 400 naming the fields', async () => {
    const res = await fetch(`${watchdog.url}/todos`, json('POST', { title: '', priority: 9 }));
    expect(res.status).toBe(400);
    expect(res.headers.get('x-pilotlight-error')).toBeNull();
    const body = (await res.json()) as { errors: { property: string }[] };
    expect(body.errors.map((e) => e.property).sort()).toEqual(['priority', 'title']);
  });
});

describe('entrypoints', () => {
  it.each([
    { entrypoint: 'app:serve', text: 'served by app:serve as entry' },
    { entrypoint: 'app.other', text: 'served by app.other' },
  ])('$entrypoint names the module and the function in it', async ({ entrypoint, text }) => {
    const watchdog = await python({ path: `${FIXTURES}python/entry-forms`, entrypoint, function: 'entry' });
    expect(await (await fetch(`${watchdog.url}/anything`)).text()).toBe(text);
    await watchdog.kill();
  });

  it('an entrypoint that is not there is a 422 with PILOTLIGHT_NO_ENTRYPOINT', async () => {
    const watchdog = await startGeneric(PYTHON);
    const failed = await specialize(watchdog, { path: `${FIXTURES}python/entry-forms`, entrypoint: 'missing.py' });
    expect(failed.status).toBe(422);
    expect(failed.body).toMatchObject({ code: 'PILOTLIGHT_LOAD_FAILED', reason: 'PILOTLIGHT_NO_ENTRYPOINT' });
    await watchdog.kill();
  });
});

describe('a function with decorated routes', () => {
  let watchdog: RunningWatchdog;
  beforeAll(async () => {
    watchdog = await python(
      { path: FEATURES, function: 'features' },
      { PILOTLIGHT_MAX_BODY_SIZE: '64MiB', PILOTLIGHT_INSTANCE: 'pod-features' },
    );
  });
  afterAll(() => watchdog?.kill());

  it('reports its routes and publishes its schedule', async () => {
    const status = (await (await fetch(`${watchdog.url}/_/schedules`)).json()) as { schedules: Record<string, unknown>[] };
    expect(status.schedules).toEqual([
      expect.objectContaining({ name: 'report', cron: '*/15 * * * *', timezone: 'UTC', trigger: expect.objectContaining({ path: '/_pilotlight/schedule/report' }) }),
    ]);
  });

  it('routes by path and method, with placeholders', async () => {
    const res = await fetch(`${watchdog.url}/items/42`, { headers: { 'x-request-id': 'item-42' } });
    expect(await res.json()).toEqual({ item: '42', requestId: 'item-42' });
    const missing = await fetch(`${watchdog.url}/nowhere`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ name: 'NotFoundError' });
    const wrong = await fetch(`${watchdog.url}/items/42`, { method: 'DELETE' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET, HEAD');
  });

  it('runs the schedule when its connector calls: by path, by header, by a Knative PingSource event', async () => {
    for (const [path, headers] of [
      ['/_pilotlight/schedule/report', {}],
      ['/', { 'x-pilotlight-schedule': 'report' }],
      ['/', { 'ce-type': 'dev.knative.sources.ping', 'ce-source': '/apis/v1/namespaces/default/pingsources/report' }],
    ] as const) {
      const res = await fetch(`${watchdog.url}${path}`, { method: 'POST', headers: { ...headers, 'x-request-id': `report-${path}` } });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ report: `report-${path}` });
    }
  });

  it('streams a generator to the client chunk by chunk', async () => {
    const go = scratchFile('go');
    const res = await fetch(`${watchdog.url}/stream?go=${encodeURIComponent(go)}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let seen = '';
    while (!seen.includes('first\n')) seen += decoder.decode((await reader.read()).value, { stream: true });
    // The generator cannot yield "second" before the file exists, and the file is made only now
    // that "first" has arrived: the ordering is the proof.
    expect(seen).toBe('first\n');
    expect(existsSync(go)).toBe(false);
    writeFileSync(go, '');
    for (let r = await reader.read(); !r.done; r = await reader.read()) seen += decoder.decode(r.value, { stream: true });
    expect(seen).toBe('first\nsecond\n');
  });

  it('receives a 20 MB body sent chunked, byte for byte', async () => {
    const { url } = watchdog;
    const { hostname, port } = new URL(url);
    const size = 20 * 1024 * 1024;
    const sent = createHash('sha256');
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest({ hostname, port, method: 'POST', path: '/digest' }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      let left = size;
      const write = () => {
        while (left > 0) {
          const chunk = randomBytes(Math.min(left, 256 * 1024));
          left -= chunk.length;
          sent.update(chunk);
          if (!req.write(chunk)) return void req.once('drain', write);
        }
        req.end();
      };
      write();
    });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ bytes: size, sha256: sent.digest('hex') });
  });

  it("passes the function's scale hints to the watchdog", async () => {
    const functionHint = async () =>
      ((await (await fetch(`${watchdog.url}/_/scale`)).json()) as { functionHint: Record<string, unknown> | null }).functionHint;
    expect(await (await fetch(`${watchdog.url}/saturated`)).text()).toBe('hinted');
    await waitUntil(async () => (await functionHint())?.saturated === true, 'the saturation hint reached the watchdog');
    expect(await (await fetch(`${watchdog.url}/load?n=7`)).text()).toBe('hinted');
    const hint = await waitUntil(async () => {
      const current = await functionHint();
      return current?.load === 7 ? current : undefined;
    }, 'the load hint reached the watchdog');
    expect(hint).toMatchObject({ load: 7, metric: 'queue' });
  });

  it('stops an async handler when the watchdog gives up on it at the deadline', async () => {
    const res = await fetch(`${watchdog.url}/forever`, { headers: { 'x-timeout': '300ms', 'x-request-id': 'given-up' } });
    expect(res.status).toBe(504);
    expect(res.headers.get('x-pilotlight-error')).toBe('PILOTLIGHT_EXEC_TIMEOUT');
    const line = await watchdog.waitForLog((r) => r.stream === 'stdout' && r.msg === 'request cancelled');
    expect(line.request_id).toBe('given-up');
  });
});

describe('blocking code', () => {
  const interval = { PILOTLIGHT_HEALTHCHECK_INTERVAL: '100ms' };

  it('in a def handler blocks only its thread: pings and other requests go on, nothing is restarted', async () => {
    const watchdog = await python({ path: FEATURES, function: 'blocking' }, interval);
    const pid = await runtimePid(watchdog);
    const entered = scratchFile('entered');
    const release = scratchFile('release');
    const blocked = fetch(`${watchdog.url}/block-thread?entered=${entered}&release=${release}`).then((r) => r.text());
    await waitUntil(() => existsSync(entered), 'the handler is blocking');
    // Many health checks pass while it blocks; meanwhile the runtime serves others.
    for (let i = 0; i < 10; i += 1) {
      expect(await runtimePid(watchdog)).toBe(pid);
      await new Promise((r) => setTimeout(r, 100));
    }
    writeFileSync(release, '');
    expect(await blocked).toBe('released');
    expect(watchdog.logs.some((r) => r.code === 'PILOTLIGHT_RUNTIME_UNRESPONSIVE')).toBe(false);
    await watchdog.kill();
  });

  it('in a def handler past its timeout, never ending: the runtime withholds its pongs to be replaced, and serves again', async () => {
    const watchdog = await python({ path: FEATURES, function: 'stuck' }, { ...interval, PILOTLIGHT_EXEC_TIMEOUT: '300ms' });
    const pid = await runtimePid(watchdog);
    const stuck = await fetch(`${watchdog.url}/block-thread?entered=${scratchFile('entered')}&release=${scratchFile('never')}`);
    expect(stuck.status).toBe(504);
    // The thread runs on; until it has for STUCK_AFTER_S (10 s), the runtime stays in service.
    expect(await runtimePid(watchdog)).toBe(pid);
    const reported = await watchdog.waitForLog((r) => r.code === 'PILOTLIGHT_HANDLER_STUCK', 20_000);
    expect(reported).toMatchObject({ level: 'error', stream: 'stdout', threads: 1 });
    await watchdog.waitForLog((r) => r.code === 'PILOTLIGHT_RUNTIME_UNRESPONSIVE');
    expect(await servedAgain(watchdog)).not.toBe(pid);
    await watchdog.kill();
  }, 40_000);

  it('on the event loop stops the pongs: the watchdog replaces the runtime, which loads the function again', async () => {
    const watchdog = await python({ path: FEATURES, function: 'hung' }, interval);
    const pid = await runtimePid(watchdog);
    const entered = scratchFile('entered');
    const hung = await fetch(`${watchdog.url}/block-loop?entered=${entered}&release=${scratchFile('never')}`);
    // The in-flight request dies with the hung runtime, as a platform error.
    expect(hung.status).toBe(502);
    expect(hung.headers.get('x-pilotlight-error')).toBe('PILOTLIGHT_UPSTREAM_EXITED');
    await watchdog.waitForLog((r) => r.code === 'PILOTLIGHT_RUNTIME_UNRESPONSIVE');
    await watchdog.waitForLog((r) => String(r.msg).startsWith('restarting the function process') && r.code === 'PILOTLIGHT_RUNTIME_UNRESPONSIVE');
    expect(await servedAgain(watchdog)).not.toBe(pid);
    await watchdog.kill();
  });
});

describe('SIGTERM while a module loops at import', () => {
  it('answers the specialization 503 PILOTLIGHT_DRAINING before the watchdog exits 0', async () => {
    const watchdog = await startGeneric({ ...PYTHON, PILOTLIGHT_GRACE_PERIOD: '3s' });
    const loading = specialize(watchdog, { path: `${FIXTURES}python/loops-at-import` });
    await watchdog.waitForLog((r) => r.state === 'specializing');
    watchdog.process.kill('SIGTERM');
    const answer = await loading;
    expect(answer.status, JSON.stringify(answer.body)).toBe(503);
    expect(answer.body.code).toBe('PILOTLIGHT_DRAINING');
    expect((await watchdog.exited).code).toBe(0);
  });
});

describe('a runtime that crashes', () => {
  it('fails the request in flight with 502, restarts, and serves the same function again', async () => {
    const watchdog = await python({ path: FEATURES, function: 'crashing' });
    const pid = await runtimePid(watchdog);
    const crashed = await fetch(`${watchdog.url}/crash`);
    expect(crashed.status).toBe(502);
    expect(crashed.headers.get('x-pilotlight-error')).toBe('PILOTLIGHT_UPSTREAM_EXITED');
    expect(await servedAgain(watchdog)).not.toBe(pid);
    const status = (await (await fetch(`${watchdog.url}/_/status`)).json()) as { state: string; function: string };
    expect(status).toMatchObject({ state: 'ready', function: 'crashing' });
    await watchdog.kill();
  });
});
