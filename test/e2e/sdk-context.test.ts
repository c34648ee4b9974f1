import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Described, newTrace, SDK_FIXTURES, startSpecialized } from '../support/sdk-helpers.js';
import { killAll, type RunningWatchdog } from '../support/watchdog.js';

afterAll(killAll);

const EXEC_TIMEOUT_MS = 20_000;
const HEX16 = /^[0-9a-f]{16}$/;
const HEX32 = /^[0-9a-f]{32}$/;

/**
 * The same assertions for the two forms a function takes: a routing-controllers class that asks
 * for the context with @Context(), and a plain (request, context) function.
 */
describe.each([
  { form: 'controller (@Context())', dir: 'context-controller', version: '1.2.3', name: 'ctx-controller', instance: 'pod-ctx-controller-0' },
  { form: 'plain handler (second argument)', dir: 'context-plain', version: '4.5.6', name: 'ctx-plain', instance: 'pod-ctx-plain-0' },
])('the invocation context of a $form, through the watchdog and the Node runtime', ({ dir, version, name, instance }) => {
  let watchdog: RunningWatchdog;

  beforeAll(async () => {
    watchdog = await startSpecialized(
      { path: `${SDK_FIXTURES}${dir}`, function: name },
      { PILOTLIGHT_EXEC_TIMEOUT: `${EXEC_TIMEOUT_MS}ms`, PILOTLIGHT_WRITE_TIMEOUT: `${EXEC_TIMEOUT_MS}ms`, PILOTLIGHT_INSTANCE: instance },
    );
  });
  afterAll(() => watchdog?.kill());

  async function call(headers: Record<string, string> = {}): Promise<{ status: number; header: Headers; ctx: Described; before: number; after: number }> {
    const before = Date.now();
    const res = await fetch(`${watchdog.url}/`, { headers });
    const text = await res.text();
    const after = Date.now();
    expect(res.status, text).toBe(200);
    return { status: res.status, header: res.headers, ctx: JSON.parse(text) as Described, before, after };
  }

  it('has the X-Request-Id the caller sent', async () => {
    const { ctx, header } = await call({ 'x-request-id': 'req-context-given-1' });
    expect(ctx.requestId).toBe('req-context-given-1');
    expect(header.get('x-request-id')).toBe('req-context-given-1');
    expect(ctx.sameAsCurrent).toBe(true);
    expect(ctx.hasLogger).toBe(true);
    if (ctx.requestIdHeader !== undefined) expect(ctx.requestIdHeader).toBe('req-context-given-1');
  });

  it('has a request id made for it when the caller sent none, the one the response carries', async () => {
    const first = await call();
    const second = await call();
    expect(first.ctx.requestId).toEqual(expect.any(String));
    expect(first.ctx.requestId.length).toBeGreaterThan(0);
    expect(first.header.get('x-request-id')).toBe(first.ctx.requestId);
    expect(second.header.get('x-request-id')).toBe(second.ctx.requestId);
    expect(second.ctx.requestId).not.toBe(first.ctx.requestId);
  });

  it("joins the caller's trace with a span of its own", async () => {
    const trace = newTrace();
    const { ctx } = await call({ traceparent: trace.traceparent });
    expect(ctx.traceId).toBe(trace.traceId);
    expect(ctx.spanId).toMatch(HEX16);
    expect(ctx.spanId).not.toBe(trace.parentId);
    expect(ctx.traceFlags).toBe('01');
    expect(ctx.traceparent).toBe(`00-${trace.traceId}-${ctx.spanId}-01`);
  });

  it('keeps the trace flags of the caller (not sampled)', async () => {
    const trace = newTrace();
    const { ctx } = await call({ traceparent: `00-${trace.traceId}-${trace.parentId}-00` });
    expect(ctx.traceId).toBe(trace.traceId);
    expect(ctx.traceFlags).toBe('00');
  });

  it('starts a trace of its own without a (valid) traceparent', async () => {
    const a = await call();
    const b = await call({ traceparent: 'not-a-traceparent' });
    const zero = await call({ traceparent: `00-${'0'.repeat(32)}-${'1'.repeat(16)}-01` });
    for (const { ctx } of [a, b, zero]) {
      expect(ctx.traceId).toMatch(HEX32);
      expect(ctx.traceId).not.toBe('0'.repeat(32));
      expect(ctx.spanId).toMatch(HEX16);
    }
    expect(new Set([a.ctx.traceId, b.ctx.traceId, zero.ctx.traceId]).size).toBe(3);
  });

  it('has a deadline in the future, no later than now + the exec timeout', async () => {
    const { ctx, before, after } = await call();
    expect(ctx.deadline).not.toBeNull();
    const deadline = ctx.deadline as number;
    expect(deadline).toBeGreaterThan(after);
    expect(deadline).toBeLessThanOrEqual(after + EXEC_TIMEOUT_MS);
    // It is the exec timeout and not some shorter limit.
    expect(deadline).toBeGreaterThan(before + EXEC_TIMEOUT_MS / 2);
    expect(ctx.remainingMs).toBeGreaterThan(0);
    expect(ctx.remainingMs).toBeLessThanOrEqual(EXEC_TIMEOUT_MS);
  });

  it('has a shorter deadline when the caller sends X-Timeout', async () => {
    const { ctx, after } = await call({ 'x-timeout': '3s' });
    const deadline = ctx.deadline as number;
    expect(deadline).toBeGreaterThan(after);
    expect(deadline).toBeLessThanOrEqual(after + 3_000);
    expect(ctx.remainingMs).toBeLessThanOrEqual(3_000);
  });

  it('ignores an X-Timeout longer than the exec timeout', async () => {
    const { ctx, after } = await call({ 'x-timeout': '10m' });
    expect(ctx.deadline as number).toBeLessThanOrEqual(after + EXEC_TIMEOUT_MS);
  });

  it("knows the function's name from specialization, the instance, and the version in package.json", async () => {
    const { ctx } = await call();
    expect(ctx.functionName).toBe(name);
    expect(ctx.instanceId).toBe(instance);
    expect(ctx.functionVersion).toBe(version);
  });
});

describe('the invocation context without an exec timeout', () => {
  it('has no deadline and unlimited time', async () => {
    const watchdog = await startSpecialized(
      { path: `${SDK_FIXTURES}context-plain`, function: 'ctx-no-timeout' },
      { PILOTLIGHT_EXEC_TIMEOUT: '0', PILOTLIGHT_INSTANCE: 'pod-no-timeout' },
    );
    const res = await fetch(`${watchdog.url}/`);
    const ctx = (await res.json()) as Described;
    expect(ctx.deadline).toBeNull();
    // JSON has no Infinity: remainingMs() === Infinity arrives as null.
    expect(ctx.remainingMs).toBeNull();
    const withTimeout = (await (await fetch(`${watchdog.url}/`, { headers: { 'x-timeout': '2s' } })).json()) as Described;
    expect(withTimeout.deadline).toBeGreaterThan(Date.now());
    expect(withTimeout.deadline as number).toBeLessThanOrEqual(Date.now() + 2_000);
    await watchdog.kill();
  });
});
