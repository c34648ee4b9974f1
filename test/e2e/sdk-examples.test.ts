import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLES, newTrace, startGeneric } from '../support/sdk-helpers.js';
import { specialize } from '../support/specialize.js';
import { killAll, type RunningWatchdog } from '../support/watchdog.js';

afterAll(killAll);

const NAMES = ['hello-ts', 'crud-ts', 'context-ts', 'stream-plain', 'scheduled-ts'] as const;
type Example = (typeof NAMES)[number];

/** One generic instance per example, each specialized by path with the example's built code. */
const instances = {} as Record<Example, RunningWatchdog>;

beforeAll(async () => {
  await Promise.all(
    NAMES.map(async (name) => {
      const watchdog = await startGeneric({ PILOTLIGHT_INSTANCE: `pod-${name}` });
      instances[name] = watchdog;
      if (name === 'scheduled-ts') {
        // Nothing is scheduled before code is loaded.
        const before = (await (await fetch(`${watchdog.url}/_/schedules`)).json()) as { schedules: unknown[] };
        expect(before.schedules).toEqual([]);
      }
      const answer = await specialize(watchdog, { path: `${EXAMPLES}${name}`, function: name });
      expect(answer.status, `${name}: ${JSON.stringify(answer.body)}`).toBe(200);
    }),
  );
}, 40_000);

describe('examples/hello-ts', () => {
  it("answers POST / with header name: world with 'hello world' and logs the name", async () => {
    const watchdog = instances['hello-ts'];
    const res = await fetch(`${watchdog.url}/`, { method: 'POST', headers: { name: 'world', 'x-request-id': 'hello-1' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('hello world');
    const line = await watchdog.waitForLog((r) => r.stream === 'stdout' && r.msg === 'function is running');
    expect(line).toMatchObject({ name: 'world', request_id: 'hello-1', function: 'hello-ts', instance: 'pod-hello-ts' });
  });
});

describe('examples/crud-ts', () => {
  const json = (method: string, body: unknown) => ({ method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('creates a todo and gets it back', async () => {
    const { url } = instances['crud-ts'];
    const created = await fetch(`${url}/todos`, json('POST', { title: 'water the plants', priority: 2 }));
    expect(created.status).toBe(201);
    const todo = (await created.json()) as { id: number; title: string; priority: number };
    expect(todo).toMatchObject({ id: expect.any(Number), title: 'water the plants', priority: 2 });

    const got = await fetch(`${url}/todos/${todo.id}`);
    expect(got.status).toBe(200);
    expect(await got.json()).toEqual(todo);
    const list = (await (await fetch(`${url}/todos`)).json()) as unknown[];
    expect(list).toContainEqual(todo);
  });

  it('refuses an invalid body with 400, naming the fields', async () => {
    const { url } = instances['crud-ts'];
    const res = await fetch(`${url}/todos`, json('POST', { title: '', priority: 9 }));
    expect(res.status).toBe(400);
    expect(res.headers.get('x-pilotlight-error')).toBeNull();
    const body = (await res.json()) as { errors?: { property: string }[] };
    expect(body.errors?.map((e) => e.property).sort()).toEqual(['priority', 'title']);
  });

  it('takes a JSON body past koa-bodyparser\'s 1 MB default: the watchdog\'s max_body_size is the limit', async () => {
    const { url } = instances['crud-ts'];
    const res = await fetch(`${url}/todos`, json('POST', { title: 'big notes', priority: 1, notes: 'x'.repeat(3_000_000) }));
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ title: 'big notes', priority: 1 });
  });

  it('answers 404 for a todo that does not exist', async () => {
    const { url } = instances['crud-ts'];
    const res = await fetch(`${url}/todos/9999`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ message: 'no todo 9999' });
  });
});

describe('examples/context-ts', () => {
  it('works through its steps with the caller’s ids and logs with them', async () => {
    const watchdog = instances['context-ts'];
    const trace = newTrace();
    const res = await fetch(`${watchdog.url}/?steps=3`, { method: 'POST', headers: { 'x-request-id': 'batch-1', traceparent: trace.traceparent } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ done: 3, traceId: trace.traceId, requestId: 'batch-1', stoppedEarly: false });
    const line = await watchdog.waitForLog((r) => r.stream === 'stdout' && r.msg === 'batch finished');
    expect(line).toMatchObject({ done: 3, request_id: 'batch-1', trace_id: trace.traceId, function: 'context-ts' });
  });
});

describe('examples/stream-plain', () => {
  it('streams its countdown in several chunks', async () => {
    const { url } = instances['stream-plain'];
    const { status, chunks } = await new Promise<{ status: number; chunks: string[] }>((resolve, reject) => {
      httpRequest(`${url}/?from=5`, { agent: false }, (res) => {
        const chunks: string[] = [];
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, chunks }));
        res.on('error', reject);
      })
        .on('error', reject)
        .end();
    });
    expect(status).toBe(200);
    expect(chunks.join('')).toBe('5\n4\n3\n2\n1\n0\n');
    expect(chunks.length).toBeGreaterThanOrEqual(2);
  });

  it('logs a stream its client abandoned as cut short, not as the function failing', async () => {
    const watchdog = instances['stream-plain'];
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${watchdog.url}/?from=100000`, { agent: false, headers: { 'x-request-id': 'abandoned-1' } }, (res) => {
        // The first line is enough: leave in the middle of the stream.
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      }).on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? undefined : reject(error)));
      req.end();
    });
    const cut = await watchdog.waitForLog((r) => r.stream === 'stdout' && r.request_id === 'abandoned-1' && typeof r.msg === 'string' && r.msg.includes('cut short'));
    expect(cut.level).toBe('info');
    expect(watchdog.logs.filter((r) => r.request_id === 'abandoned-1' && r.level === 'error')).toEqual([]);
  });
});

describe('examples/scheduled-ts', () => {
  const cron = '*/15 * * * *';

  it('publishes its schedule at GET /_/schedules for cron connectors', async () => {
    const { url } = instances['scheduled-ts'];
    const published = (await (await fetch(`${url}/_/schedules`)).json()) as { function: string; schedules: Record<string, unknown>[] };
    expect(published.function).toBe('scheduled-ts');
    expect(published.schedules).toHaveLength(1);
    const [purge] = published.schedules;
    expect(purge).toMatchObject({
      name: 'purge',
      cron,
      timezone: 'UTC',
      trigger: { path: '/_pilotlight/schedule/purge', header: { 'x-pilotlight-schedule': 'purge' } },
      openfaas: { annotations: { topic: 'cron-function', schedule: cron } },
      knative: {
        apiVersion: 'sources.knative.dev/v1',
        kind: 'PingSource',
        spec: { schedule: cron, timezone: 'UTC', sink: { uri: '/_pilotlight/schedule/purge' } },
      },
    });
  });

  it('runs the schedule on POST /_pilotlight/schedule/purge', async () => {
    const { url } = instances['scheduled-ts'];
    const res = await fetch(`${url}/_pilotlight/schedule/purge`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ purged: 3 });
  });

  it('runs the schedule for a Knative PingSource event (ce-type: dev.knative.sources.ping)', async () => {
    const watchdog = instances['scheduled-ts'];
    const res = await fetch(`${watchdog.url}/`, {
      method: 'POST',
      headers: { 'ce-type': 'dev.knative.sources.ping', 'ce-specversion': '1.0', 'ce-id': 'ping-1', 'ce-source': 'test', 'x-request-id': 'ping-1' },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ purged: 3 });
    const line = await watchdog.waitForLog((r) => r.stream === 'stdout' && r.msg === 'purged expired sessions' && r.request_id === 'ping-1');
    expect(line).toMatchObject({ purged: 3, function: 'scheduled-ts' });
  });

  it('reports the last run on GET /status, and an unknown schedule is not run', async () => {
    const { url } = instances['scheduled-ts'];
    const status = (await (await fetch(`${url}/status`)).json()) as { lastRun: { purged: number } | null; function: string };
    expect(status).toMatchObject({ lastRun: { purged: 3 }, function: 'scheduled-ts' });
    const unknown = await fetch(`${url}/_pilotlight/schedule/nope`, { method: 'POST' });
    expect(unknown.status).toBe(404);
  });

  it('answers a schedule path with a malformed escape like any unknown path, and keeps serving', async () => {
    const { url } = instances['scheduled-ts'];
    const malformed = await fetch(`${url}/_pilotlight/schedule/%E0%A4%A`, { method: 'POST' });
    expect(malformed.status).toBe(404);
    const again = await fetch(`${url}/_pilotlight/schedule/purge`, { method: 'POST' });
    expect(again.status).toBe(200);
  });
});
