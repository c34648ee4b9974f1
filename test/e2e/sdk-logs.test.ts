import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../support/http-helpers.js';
import { functionLines, newTrace, SDK_FIXTURES, startGeneric, startSpecialized } from '../support/sdk-helpers.js';
import { specialize } from '../support/specialize.js';
import { killAll, type LogRecord } from '../support/watchdog.js';

afterAll(killAll);

const CONCURRENT = 100;
/** Lines each invocation of the fixtures writes: logger and ctx.logger, before and after an await. */
const LINES_PER_INVOCATION = 4;

describe.each([
  { form: 'controller', dir: 'logs-controller' },
  { form: 'plain handler', dir: 'logs-plain' },
])(`log lines of ${CONCURRENT} concurrent invocations of a $form`, ({ form, dir }) => {
  it('each carry their own request and trace ids, with function and instance', async () => {
    const name = `logs-${form.replace(/ /g, '-')}`;
    const instance = `pod-${name}-7`;
    const watchdog = await startSpecialized({ path: `${SDK_FIXTURES}${dir}`, function: name }, { PILOTLIGHT_INSTANCE: instance });

    const calls = Array.from({ length: CONCURRENT }, (_, i) => ({ n: String(i), requestId: `req-${dir}-${i}`, ...newTrace() }));
    const answers = await Promise.all(
      calls.map(async (call) => {
        const res = await fetch(`${watchdog.url}/?n=${call.n}`, { headers: { 'x-request-id': call.requestId, traceparent: call.traceparent } });
        return { status: res.status, body: (await res.json()) as { n: string; requestId: string } };
      }),
    );
    expect(answers.map((a) => a.status)).toEqual(calls.map(() => 200));
    expect(answers.map((a) => a.body)).toEqual(calls.map((c) => ({ n: c.n, requestId: c.requestId })));

    const tagged = (r: LogRecord) => typeof r.n === 'string' && (r.phase === 'before' || r.phase === 'after');
    await waitUntil(() => functionLines(watchdog, tagged).length >= CONCURRENT * LINES_PER_INVOCATION, 'every function log line arrived');
    const lines = functionLines(watchdog, tagged);
    expect(lines).toHaveLength(CONCURRENT * LINES_PER_INVOCATION);

    const byN = new Map<string, LogRecord[]>();
    for (const line of lines) byN.set(line.n as string, [...(byN.get(line.n as string) ?? []), line]);
    expect(byN.size).toBe(CONCURRENT);
    for (const call of calls) {
      const own = byN.get(call.n) ?? [];
      expect(own.map((l) => `${l.via}:${l.phase}`).sort(), `lines of invocation ${call.n}`).toEqual([
        'ctx:after',
        'ctx:before',
        'logger:after',
        'logger:before',
      ]);
      for (const line of own) {
        expect(line, `line of invocation ${call.n}`).toMatchObject({
          request_id: call.requestId,
          trace_id: call.traceId,
          trace_flags: '01',
          function: name,
          instance,
          stream: 'stdout',
          level: 'info',
        });
        expect(line.span_id).toMatch(/^[0-9a-f]{16}$/);
        expect(line.span_id).not.toBe(call.parentId);
      }
      // One invocation, one span: the same on every line, through either logger.
      expect(new Set(own.map((l) => l.span_id)).size).toBe(1);
    }
    // Each invocation got a span of its own.
    expect(new Set(lines.map((l) => l.span_id)).size).toBe(CONCURRENT);
    await watchdog.kill();
  });
});

describe('PILOTLIGHT_FUNCTION_LOG_LEVEL given at specialization', () => {
  it('applies to the function\'s logger as to ctx.logger', async () => {
    // The watchdog passes the function's lines on at its own level: debug too, here.
    const watchdog = await startSpecialized(
      { path: `${SDK_FIXTURES}logs-debug`, function: 'logs-debug', env: { PILOTLIGHT_FUNCTION_LOG_LEVEL: 'debug' } },
      { PILOTLIGHT_LOG_LEVEL: 'debug' },
    );
    expect((await fetch(`${watchdog.url}/`)).status).toBe(200);
    const debug = (r: LogRecord) => r.level === 'debug' && r.msg === 'a debug line';
    await waitUntil(() => functionLines(watchdog, debug).length === 2, 'a debug line from each logger');
    expect(functionLines(watchdog, debug).map((l) => l.via).sort()).toEqual(['ctx', 'logger']);
    await watchdog.kill();
  });

  it('is refused with a 422 naming the setting when it is not a level, and the instance takes it right after', async () => {
    const watchdog = await startGeneric();
    const refused = await specialize(watchdog, { path: `${SDK_FIXTURES}logs-debug`, env: { PILOTLIGHT_FUNCTION_LOG_LEVEL: 'loud' } });
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({ reason: 'PILOTLIGHT_BAD_LOG_LEVEL' });
    expect(String(refused.body.message)).toContain('PILOTLIGHT_FUNCTION_LOG_LEVEL "loud" is not a log level');
    expect((await specialize(watchdog, { path: `${SDK_FIXTURES}logs-debug`, env: { PILOTLIGHT_FUNCTION_LOG_LEVEL: 'warn' } })).status).toBe(200);
    await watchdog.kill();
  });
});

describe('PILOTLIGHT_LOG_FILE given at specialization', () => {
  it("takes both loggers' lines to the file, and none to the watchdog", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pl-logfile-'));
    const file = join(dir, 'nested', 'function.log');
    const watchdog = await startSpecialized(
      { path: `${SDK_FIXTURES}logs-debug`, function: 'logs-file', env: { PILOTLIGHT_FUNCTION_LOG_LEVEL: 'debug', PILOTLIGHT_LOG_FILE: file } },
      { PILOTLIGHT_LOG_LEVEL: 'debug' },
    );
    try {
      expect((await fetch(`${watchdog.url}/`, { headers: { 'x-request-id': 'to-the-file' } })).status).toBe(200);
      const inFile = () =>
        existsSync(file)
          ? readFileSync(file, 'utf8')
              .split('\n')
              .filter((line) => line.includes('"a debug line"'))
              .map((line) => JSON.parse(line) as LogRecord)
          : [];
      await waitUntil(() => inFile().length === 2, 'a debug line from each logger in the file');
      expect(inFile().map((l) => [l.via, l.request_id]).sort()).toEqual([
        ['ctx', 'to-the-file'],
        ['logger', 'to-the-file'],
      ]);
      expect(functionLines(watchdog, (r) => r.msg === 'a debug line')).toEqual([]);
    } finally {
      await watchdog.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is refused with a 422 naming the setting when it cannot be written, and the instance takes good code right after', async () => {
    const watchdog = await startGeneric();
    // A path under a regular file: no directory can be made there, as root or not.
    const refused = await specialize(watchdog, { path: `${SDK_FIXTURES}logs-debug`, env: { PILOTLIGHT_LOG_FILE: `${SDK_FIXTURES}logs-debug/index.js/function.log` } });
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({ reason: 'PILOTLIGHT_BAD_LOG_FILE' });
    expect(String(refused.body.message)).toContain('PILOTLIGHT_LOG_FILE');
    expect((await specialize(watchdog, { path: `${SDK_FIXTURES}logs-debug`, env: { PILOTLIGHT_LOG_FILE: '' } })).status).toBe(200);
    expect((await fetch(`${watchdog.url}/`)).status).toBe(200);
    await watchdog.kill();
  });
});

describe('log lines outside an invocation', () => {
  it('carry no request or trace ids', async () => {
    const watchdog = await startSpecialized({ path: `${SDK_FIXTURES}hooks-plain`, function: 'logs-outside', env: { MARKER_FILE: '/dev/null' } });
    const initLine = await watchdog.waitForLog((r) => r.stream === 'stdout' && r.msg === 'plain initialize ran');
    expect(initLine.request_id).toBeUndefined();
    expect(initLine.trace_id).toBeUndefined();
    expect(initLine.span_id).toBeUndefined();
    await watchdog.kill();
  });
});
