/**
 * One suite, every built-in runtime: what docs/runtime-protocol.md and the SDKs promise, checked
 * the same way against the Node runtime and the Python runtime through the real watchdog. Each
 * scenario loads the fixture of the same name written in each language
 * (test/fixtures/conformance-node/<name>, test/fixtures/python/<name>), which answer under the
 * same JSON keys, so one assertion covers both.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../support/http-helpers.js';
import { type Described, functionLines, newTrace, startGeneric, startSpecialized, type SpecializeBody } from '../support/sdk-helpers.js';
import { specialize } from '../support/specialize.js';
import { FIXTURES, killAll, type LogRecord, type RunningWatchdog, type StartOptions } from '../support/watchdog.js';

const scratch = mkdtempSync(join(tmpdir(), 'pilotlight-conformance-'));

afterAll(async () => {
  await killAll();
  rmSync(scratch, { recursive: true, force: true });
});

const RUNTIMES = [
  { runtime: 'node', fixtures: `${FIXTURES}conformance-node/`, file: 'index.js' },
  { runtime: 'python', fixtures: `${FIXTURES}python/`, file: 'main.py' },
] as const;

const HEX16 = /^[0-9a-f]{16}$/;
const HEX32 = /^[0-9a-f]{32}$/;
const EXEC_TIMEOUT_MS = 20_000;
const CONCURRENT = 50;

describe.each(RUNTIMES)('the $runtime runtime', ({ runtime, fixtures, file }) => {
  const env = (extra: StartOptions['env'] = {}): StartOptions['env'] => ({ PILOTLIGHT_RUNTIME: runtime, ...extra });
  const body = (fixture: string, extra: Partial<SpecializeBody> = {}): SpecializeBody => ({
    path: `${fixtures}${fixture}`,
    function: `${runtime}-${fixture}`,
    ...extra,
  });

  describe('specialization', () => {
    it('pre-starts generic, refuses traffic, then serves once specialized by path', async () => {
      const watchdog = await startGeneric(env({ PILOTLIGHT_INSTANCE: `pod-${runtime}` }));
      const generic = (await (await fetch(`${watchdog.url}/_/status`)).json()) as Record<string, unknown>;
      expect(generic).toMatchObject({ state: 'generic', mode: 'http', runtime, function: null });
      const refused = await fetch(`${watchdog.url}/`);
      expect(refused.status).toBe(503);
      expect(refused.headers.get('x-pilotlight-error')).toBe('PILOTLIGHT_NOT_READY');

      const answer = await specialize(watchdog, body('context'));
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      expect(answer.body).toMatchObject({ state: 'ready', routes: ['* /'] });
      expect(answer.body.specializeMs).toEqual(expect.any(Number));
      const ready = (await (await fetch(`${watchdog.url}/_/status`)).json()) as Record<string, unknown>;
      expect(ready).toMatchObject({ state: 'ready', runtime, function: `${runtime}-context` });
      const res = await fetch(`${watchdog.url}/`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ functionName: `${runtime}-context`, instanceId: `pod-${runtime}` });

      const again = await specialize(watchdog, body('context'));
      expect(again.status).toBe(409);
      await watchdog.kill();
    });

    it.each([
      { fixture: 'throws-at-import', reason: 'PILOTLIGHT_LOAD_FAILED', message: 'fixture exploded at import' },
      { fixture: 'no-handler', reason: 'PILOTLIGHT_NO_HANDLER', message: 'no-handler' },
      { fixture: 'init-throws', reason: 'PILOTLIGHT_INITIALIZER_FAILED', message: 'the config file is missing' },
    ])(
      'answers 422 with reason $reason for $fixture; the instance stays generic and then takes good code',
      async ({ fixture, reason, message }) => {
        const watchdog = await startGeneric(env());
        const failed = await specialize(watchdog, body(fixture));
        expect(failed.status).toBe(422);
        expect(failed.body).toMatchObject({ code: 'PILOTLIGHT_LOAD_FAILED', reason });
        expect(failed.body.message).toContain(message);
        expect(typeof failed.body.stack).toBe('string');
        if (fixture === 'throws-at-import') expect(failed.body.stack).toContain(`${fixture}/${file}`);
        const status = (await (await fetch(`${watchdog.url}/_/status`)).json()) as Record<string, unknown>;
        expect(status.state).toBe('generic');
        expect((await fetch(`${watchdog.url}/`)).status).toBe(503);

        // Retried at once with good code, as a pool manager would.
        const good = await specialize(watchdog, body('context', { function: 'good' }));
        expect(good.status, JSON.stringify(good.body)).toBe(200);
        const served = await fetch(`${watchdog.url}/`);
        expect(await served.json()).toMatchObject({ functionName: 'good', functionVersion: '4.5.6' });
        await watchdog.kill();
      },
    );
  });

  describe('the invocation context', () => {
    let watchdog: RunningWatchdog;
    const instance = `pod-${runtime}-ctx`;

    beforeAll(async () => {
      watchdog = await startSpecialized(
        body('context', { function: `ctx-${runtime}` }),
        env({ PILOTLIGHT_EXEC_TIMEOUT: `${EXEC_TIMEOUT_MS}ms`, PILOTLIGHT_WRITE_TIMEOUT: `${EXEC_TIMEOUT_MS}ms`, PILOTLIGHT_INSTANCE: instance }),
      );
    });
    afterAll(() => watchdog?.kill());

    async function call(headers: Record<string, string> = {}): Promise<{ ctx: Described; header: Headers; before: number; after: number }> {
      const before = Date.now();
      const res = await fetch(`${watchdog.url}/`, { headers });
      const text = await res.text();
      const after = Date.now();
      expect(res.status, text).toBe(200);
      return { ctx: JSON.parse(text) as Described, header: res.headers, before, after };
    }

    it('has the X-Request-Id the caller sent, or one made for it that the response carries', async () => {
      const given = await call({ 'x-request-id': `req-${runtime}-1` });
      expect(given.ctx.requestId).toBe(`req-${runtime}-1`);
      expect(given.ctx.requestIdHeader).toBe(`req-${runtime}-1`);
      expect(given.ctx.sameAsCurrent).toBe(true);
      expect(given.ctx.hasLogger).toBe(true);
      const made = await call();
      expect(made.ctx.requestId.length).toBeGreaterThan(0);
      expect(made.header.get('x-request-id')).toBe(made.ctx.requestId);
    });

    it("joins the caller's trace with a span of its own, keeping its flags", async () => {
      const trace = newTrace();
      const { ctx } = await call({ traceparent: trace.traceparent });
      expect(ctx.traceId).toBe(trace.traceId);
      expect(ctx.spanId).toMatch(HEX16);
      expect(ctx.spanId).not.toBe(trace.parentId);
      expect(ctx.traceparent).toBe(`00-${trace.traceId}-${ctx.spanId}-01`);
      const unsampled = await call({ traceparent: `00-${trace.traceId}-${trace.parentId}-00` });
      expect(unsampled.ctx.traceFlags).toBe('00');
    });

    it('starts a trace of its own without a valid traceparent', async () => {
      const a = await call();
      const b = await call({ traceparent: 'not-a-traceparent' });
      const zero = await call({ traceparent: `00-${'0'.repeat(32)}-${'1'.repeat(16)}-01` });
      for (const { ctx } of [a, b, zero]) {
        expect(ctx.traceId).toMatch(HEX32);
        expect(ctx.traceId).not.toBe('0'.repeat(32));
      }
      expect(new Set([a.ctx.traceId, b.ctx.traceId, zero.ctx.traceId]).size).toBe(3);
    });

    it('has the deadline of the exec timeout, shortened by X-Timeout', async () => {
      const { ctx, before, after } = await call();
      expect(ctx.deadline as number).toBeGreaterThan(after);
      expect(ctx.deadline as number).toBeLessThanOrEqual(after + EXEC_TIMEOUT_MS);
      expect(ctx.deadline as number).toBeGreaterThan(before + EXEC_TIMEOUT_MS / 2);
      expect(ctx.remainingMs).toBeGreaterThan(0);
      expect(ctx.remainingMs).toBeLessThanOrEqual(EXEC_TIMEOUT_MS);
      const short = await call({ 'x-timeout': '3s' });
      expect(short.ctx.deadline as number).toBeLessThanOrEqual(short.after + 3_000);
    });

    it("knows the function's name, the instance and the version in the function's manifest", async () => {
      const { ctx } = await call();
      expect(ctx).toMatchObject({ functionName: `ctx-${runtime}`, instanceId: instance, functionVersion: '4.5.6' });
    });
  });

  describe('errors the function throws', () => {
    let watchdog: RunningWatchdog;
    let debug: RunningWatchdog;

    beforeAll(async () => {
      [watchdog, debug] = await Promise.all([
        startSpecialized(body('errors'), env()),
        startSpecialized(body('errors', { function: `${runtime}-errors-debug`, env: { PILOTLIGHT_DEBUG: 'true' } }), env()),
      ]);
    });
    afterAll(async () => {
      await Promise.all([watchdog?.kill(), debug?.kill()]);
    });

    it('an HTTP error keeps its status, name and message', async () => {
      const missing = await fetch(`${watchdog.url}/missing`);
      expect(missing.status).toBe(404);
      expect(missing.headers.get('x-pilotlight-error')).toBeNull();
      const body404 = (await missing.json()) as Record<string, unknown>;
      expect(body404).toMatchObject({ name: 'NotFoundError', message: 'no widget 42' });
      expect(body404.stack).toBeUndefined();
      const invalid = await fetch(`${watchdog.url}/invalid`);
      expect(invalid.status).toBe(400);
      expect(await invalid.json()).toMatchObject({ name: 'BadRequestError', message: 'the widget is malformed' });
    });

    it('any other error is a 500 without message or stack; the log has both, at level error, with the ids', async () => {
      const requestId = `boom-${runtime}`;
      const res = await fetch(`${watchdog.url}/boom`, { headers: { 'x-request-id': requestId } });
      expect(res.status).toBe(500);
      expect(res.headers.get('x-pilotlight-error')).toBeNull();
      expect(res.headers.get('content-type')).toContain('application/json');
      const text = await res.text();
      expect(text).not.toContain('hunter2');
      expect(JSON.parse(text).stack).toBeUndefined();

      const line = await watchdog.waitForLog((r) => r.stream === 'stdout' && r.level === 'error' && r.request_id === requestId);
      const err = line.err as { message?: string; stack?: string };
      expect(err.message).toBe('the database password is hunter2');
      expect(err.stack).toContain('the database password is hunter2');
      expect(err.stack).toContain(`errors/${file}`);
      expect(line.function).toBe(`${runtime}-errors`);
      expect(line.trace_id).toMatch(HEX32);
    });

    it('with PILOTLIGHT_DEBUG=true in the function env the 500 body has message and stack; HTTP errors are unchanged', async () => {
      const res = await fetch(`${debug.url}/boom`);
      expect(res.status).toBe(500);
      const body500 = (await res.json()) as { message?: string; stack?: string };
      expect(body500.message).toBe('the database password is hunter2');
      expect(body500.stack).toContain(`errors/${file}`);
      const missing = await fetch(`${debug.url}/missing`);
      expect(missing.status).toBe(404);
      expect(await missing.json()).toMatchObject({ name: 'NotFoundError', message: 'no widget 42' });
    });
  });

  describe(`log lines of ${CONCURRENT} concurrent invocations`, () => {
    it('each carry their own request and trace ids, one span per invocation, with function and instance', async () => {
      const name = `logs-${runtime}`;
      const instance = `pod-${name}-3`;
      const watchdog = await startSpecialized(body('logs', { function: name }), env({ PILOTLIGHT_INSTANCE: instance }));
      const calls = Array.from({ length: CONCURRENT }, (_, i) => ({ n: String(i), requestId: `req-${name}-${i}`, ...newTrace() }));
      const answers = await Promise.all(
        calls.map(async (c) => {
          const res = await fetch(`${watchdog.url}/?n=${c.n}`, { headers: { 'x-request-id': c.requestId, traceparent: c.traceparent } });
          return { status: res.status, body: (await res.json()) as { n: string; requestId: string } };
        }),
      );
      expect(answers.map((a) => a.status)).toEqual(calls.map(() => 200));
      expect(answers.map((a) => a.body)).toEqual(calls.map((c) => ({ n: c.n, requestId: c.requestId })));

      const tagged = (r: LogRecord) => typeof r.n === 'string' && (r.phase === 'before' || r.phase === 'after');
      await waitUntil(() => functionLines(watchdog, tagged).length >= CONCURRENT * 4, 'every function log line arrived');
      const lines = functionLines(watchdog, tagged);
      expect(lines).toHaveLength(CONCURRENT * 4);
      for (const c of calls) {
        const own = lines.filter((l) => l.n === c.n);
        expect(own.map((l) => `${l.via}:${l.phase}`).sort(), `lines of invocation ${c.n}`).toEqual([
          'ctx:after',
          'ctx:before',
          'logger:after',
          'logger:before',
        ]);
        for (const line of own) {
          expect(line).toMatchObject({ request_id: c.requestId, trace_id: c.traceId, trace_flags: '01', function: name, instance, level: 'info' });
          expect(line.span_id).toMatch(HEX16);
          expect(line.span_id).not.toBe(c.parentId);
        }
        expect(new Set(own.map((l) => l.span_id)).size).toBe(1);
      }
      expect(new Set(lines.map((l) => l.span_id)).size).toBe(CONCURRENT);
      await watchdog.kill();
    });
  });

  describe('lifecycle hooks', () => {
    it('the initializer runs once before the instance serves; its log line carries no request ids', async () => {
      const watchdog = await startSpecialized(body('hooks', { env: { MARKER_FILE: '/dev/null' } }), env());
      for (let i = 0; i < 2; i += 1) {
        const res = await fetch(`${watchdog.url}/`);
        expect(await res.json()).toMatchObject({ initialized: true, initializeCalls: 1 });
      }
      const line = await watchdog.waitForLog((r) => r.stream === 'stdout' && r.msg === 'initialize ran');
      expect(line.request_id).toBeUndefined();
      expect(line.trace_id).toBeUndefined();
      await watchdog.kill();
    });

    it('the pre-stop hook runs on SIGTERM with the grace time left; its log line is not lost; exit 0', async () => {
      const graceMs = 8_000;
      const marker = join(scratch, `${runtime}-hooks-marker.json`);
      const watchdog = await startSpecialized(body('hooks', { env: { MARKER_FILE: marker } }), env({ PILOTLIGHT_GRACE_PERIOD: `${graceMs}ms` }));
      expect((await fetch(`${watchdog.url}/`)).status).toBe(200);
      expect(existsSync(marker)).toBe(false);

      watchdog.process.kill('SIGTERM');
      expect(await watchdog.exited).toEqual({ code: 0, signal: null });
      const written = JSON.parse(readFileSync(marker, 'utf8')) as { remainingMs: number; deadline: number };
      expect(written.remainingMs).toBeGreaterThan(0);
      expect(written.remainingMs).toBeLessThanOrEqual(graceMs);
      expect(functionLines(watchdog, (r) => r.msg === 'preStop ran')).toHaveLength(1);
    });
  });

  describe('SIGTERM with requests in flight', () => {
    it('finishes every one of them, refuses new work, and exits 0', async () => {
      const holdDir = mkdtempSync(join(scratch, `hold-${runtime}-`));
      const watchdog = await startSpecialized(body('hold', { env: { HOLD_DIR: holdDir } }), env({ PILOTLIGHT_GRACE_PERIOD: '20s' }));
      const ids = ['a', 'b', 'c', 'd', 'e'];
      const inflight = ids.map((id) => fetch(`${watchdog.url}/?id=${id}`).then(async (r) => ({ status: r.status, text: await r.text() })));
      await waitUntil(() => ids.every((id) => existsSync(join(holdDir, `${id}.entered`))), 'every request reached the function');

      watchdog.process.kill('SIGTERM');
      await watchdog.waitForLog((r) => r.state === 'draining');
      const late = await fetch(`${watchdog.url}/?id=late`).then(
        (r) => r.status,
        () => 'refused',
      );
      expect([503, 'refused']).toContain(late);
      expect(existsSync(join(holdDir, 'late.entered'))).toBe(false);

      // Released only now: the drain waited for them.
      writeFileSync(join(holdDir, 'release'), '');
      const answers = await Promise.all(inflight);
      expect(answers).toEqual(ids.map((id) => ({ status: 200, text: `released ${id}` })));
      expect(await watchdog.exited).toEqual({ code: 0, signal: null });
      expect(watchdog.logs.filter((r) => r.level === 'error' || r.level === 'fatal')).toEqual([]);
    });
  });
});
