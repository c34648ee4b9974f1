import { createServer, type IncomingMessage, type Server } from 'node:http';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { rawExchange } from '../support/http-helpers.js';
import { newTrace, SDK_FIXTURES, startGeneric } from '../support/sdk-helpers.js';
import { specialize } from '../support/specialize.js';
import { FIXTURES, freePort, killAll, startWatchdog, type RunningWatchdog } from '../support/watchdog.js';

afterEach(killAll);

/** Reads one sample's value from the Prometheus text, or undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labelText = line.slice(name.length).split(' ')[0] ?? '';
    if (wanted.every((pair) => labelText.includes(pair))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

async function metricsText(watchdog: RunningWatchdog): Promise<string> {
  return (await fetch(`${watchdog.url}/_/metrics`)).text();
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (const stop = Date.now() + 10_000; Date.now() < stop; ) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`timed out waiting until ${what}`);
}

async function httpWatchdog(env: Record<string, string> = {}): Promise<RunningWatchdog> {
  const upstream = await freePort();
  return startWatchdog({
    env: { UPSTREAM_PORT: String(upstream), PILOTLIGHT_UPSTREAM_URL: `http://127.0.0.1:${upstream}`, ...env },
    args: ['--', process.execPath, `${FIXTURES}http-upstream.js`],
  });
}

describe('metrics', () => {
  it('counts a known sequence: 3 × 200, a 429, a 504', async () => {
    const watchdog = await httpWatchdog({ PILOTLIGHT_MAX_INFLIGHT: '1', PILOTLIGHT_EXEC_TIMEOUT: '300ms' });
    for (let i = 0; i < 3; i++) expect((await fetch(`${watchdog.url}/pid`)).status).toBe(200);
    // One request holds the only slot; the next is refused with 429.
    const held = fetch(`${watchdog.url}/slow?ms=2000`);
    let refused = 0;
    for (let i = 0; i < 50 && refused === 0; i++) {
      const res = await fetch(`${watchdog.url}/pid`);
      if (res.status === 429) refused += 1;
      await res.arrayBuffer();
    }
    expect(refused).toBe(1);
    expect((await held).status).toBe(504);
    const text = await (await fetch(`${watchdog.url}/_/metrics`)).text();
    expect(sample(text, 'http_requests_total', { code: '200', method: 'GET' })).toBe(3);
    expect(sample(text, 'http_requests_total', { code: '429', method: 'GET' })).toBe(1);
    expect(sample(text, 'http_requests_total', { code: '504', method: 'GET' })).toBe(1);
    expect(sample(text, 'http_request_duration_seconds_count', { code: '200', method: 'GET' })).toBe(3);
    // Buckets are cumulative: every request is within +Inf, and none took less than nothing.
    expect(sample(text, 'http_request_duration_seconds_bucket', { code: '200', method: 'GET', le: '+Inf' })).toBe(3);
    expect(sample(text, 'http_request_duration_seconds_bucket', { code: '504', method: 'GET', le: '0.005' })).toBe(0);
    expect(sample(text, 'pilotlight_rejected_total', { code: 'PILOTLIGHT_OVERLOADED' })).toBe(1);
    expect(sample(text, 'pilotlight_rejected_total', { code: 'PILOTLIGHT_EXEC_TIMEOUT' })).toBe(1);
    expect(sample(text, 'http_requests_in_flight')).toBe(0);
    expect(sample(text, 'pilotlight_cold_start_seconds_count')).toBe(1);
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('counts a request whose client left before any answer as 499, and bytes that never became a request', async () => {
    const watchdog = await httpWatchdog();
    const gone = new AbortController();
    const abandoned = fetch(`${watchdog.url}/hold?id=left`, { signal: gone.signal }).catch(() => 'aborted');
    await waitFor(async () => ((await (await fetch(`${watchdog.url}/_/status`)).json()) as { inflight: number }).inflight === 1, 'the request is in flight');
    gone.abort();
    expect(await abandoned).toBe('aborted');
    await waitFor(async () => sample(await metricsText(watchdog), 'http_requests_total', { code: '499', method: 'GET' }) === 1, 'the 499 is counted');
    const text = await metricsText(watchdog);
    expect(sample(text, 'http_requests_total', { code: '200', method: 'GET' })).toBeUndefined();

    const garbage = await rawExchange(watchdog.port, 'NOT HTTP AT ALL\r\n\r\n');
    expect(garbage.status).toBe(400);
    expect(sample(await metricsText(watchdog), 'pilotlight_rejected_total', { code: 'PILOTLIGHT_BAD_REQUEST' })).toBe(1);
  });

  it('serves the same metrics on a separate metrics port, as of-watchdog does on 8081', async () => {
    const metricsPort = await freePort();
    const watchdog = await httpWatchdog({ PILOTLIGHT_METRICS_PORT: String(metricsPort) });
    await fetch(`${watchdog.url}/pid`);
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(sample(text, 'http_requests_total', { code: '200', method: 'GET' })).toBe(1);
  });
});

describe('trace context', () => {
  it('reaches the upstream, the response and the logs, each hop with its own span', async () => {
    const watchdog = await httpWatchdog({ PILOTLIGHT_ACCESS_LOG: 'true' });
    const { traceId, parentId, traceparent } = newTrace();
    const res = await fetch(`${watchdog.url}/headers`, { headers: { traceparent, tracestate: 'vendor=1' } });
    const seen = (await res.json()) as { headers: Record<string, string> };
    const [, upTrace, upSpan] = seen.headers.traceparent!.split('-');
    expect(upTrace).toBe(traceId);
    expect(upSpan).not.toBe(parentId);
    expect(seen.headers.tracestate).toBe('vendor=1');
    expect(res.headers.get('traceresponse')).toBe(seen.headers.traceparent);
    const line = await watchdog.waitForLog((r) => r.msg === 'request' && r.trace_id === traceId);
    expect(line.span_id).toBe(upSpan);
    expect(line.request_id).toBe(res.headers.get('x-request-id'));
  });

  it('reaches a function in the runtime', async () => {
    const watchdog = await startGeneric();
    await specialize(watchdog, { path: `${SDK_FIXTURES}context-plain` });
    const { traceId, traceparent } = newTrace();
    const res = await fetch(`${watchdog.url}/`, { headers: { traceparent } });
    const ctx = (await res.json()) as { traceId: string; traceparent: string };
    expect(ctx.traceId).toBe(traceId);
    // The function's span is a child of the watchdog's, which the response names.
    expect(res.headers.get('traceresponse')?.split('-')[1]).toBe(traceId);
  });

  it('reaches a forked child as TRACEPARENT, and its log lines carry the trace id', async () => {
    const watchdog = await startWatchdog({ env: { PILOTLIGHT_MODE: 'serializing' }, args: ['--', `${FIXTURES}obs-trace.sh`] });
    const { traceId, traceparent } = newTrace();
    const res = await fetch(`${watchdog.url}/`, { method: 'POST', headers: { traceparent } });
    const childTraceparent = await res.text();
    expect(childTraceparent.split('-')[1]).toBe(traceId);
    expect(res.headers.get('traceresponse')).toBe(childTraceparent);
    const line = await watchdog.waitForLog((r) => r.msg === 'working');
    expect(line.trace_id).toBe(traceId);
    expect(line.stream).toBe('stderr');
  });
});

describe('scale hints', () => {
  let receiver: Server | undefined;
  afterAll(() => receiver?.close());

  async function hintReceiver(): Promise<{ url: string; hints: Record<string, unknown>[] }> {
    const hints: Record<string, unknown>[] = [];
    receiver = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        hints.push(JSON.parse(body) as Record<string, unknown>);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver!.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hints`, hints };
  }

  it('pushes at once on saturation, with the heartbeat an hour away, and nothing while steady', async () => {
    const { url, hints } = await hintReceiver();
    const watchdog = await httpWatchdog({
      PILOTLIGHT_SCALE_HINT_URL: url,
      PILOTLIGHT_SCALE_HINT_INTERVAL: '1h',
      PILOTLIGHT_SCALE_HINT_MIN_INTERVAL: '1h',
      PILOTLIGHT_MAX_INFLIGHT: '1',
      PILOTLIGHT_MAX_QUEUE: '5',
    });
    // The first evaluation sends one heartbeat; then steady, unsaturated traffic sends nothing.
    await expect.poll(() => hints.length).toBe(1);
    for (let i = 0; i < 10; i++) await (await fetch(`${watchdog.url}/pid`)).arrayBuffer();
    await new Promise((r) => setTimeout(r, 600));
    expect(hints).toHaveLength(1);
    // Saturation: one request holds the only slot and the next has to queue.
    const held = fetch(`${watchdog.url}/slow?ms=1500`);
    await new Promise((r) => setTimeout(r, 100));
    const queued = fetch(`${watchdog.url}/pid`);
    await expect.poll(() => hints.length, { timeout: 1000 }).toBe(2);
    expect(hints[1]).toMatchObject({ reason: 'saturated', saturated: true, capacity: 1 });
    await Promise.all([held, queued]);
    const pulled = (await (await fetch(`${watchdog.url}/_/scale`)).json()) as Record<string, unknown>;
    expect(pulled).toMatchObject({ reason: 'pull', capacity: 1, state: 'ready' });
  });

  it('costs requests nothing when the receiver is down', async () => {
    const dead = await freePort();
    const watchdog = await httpWatchdog({
      PILOTLIGHT_SCALE_HINT_URL: `http://127.0.0.1:${dead}/hints`,
      PILOTLIGHT_SCALE_HINT_MIN_INTERVAL: '100ms',
      PILOTLIGHT_MAX_INFLIGHT: '1',
      PILOTLIGHT_MAX_QUEUE: '10',
    });
    const answers = await Promise.all(Array.from({ length: 10 }, () => fetch(`${watchdog.url}/slow?ms=20`).then((r) => r.status)));
    expect(answers.every((s) => s === 200)).toBe(true);
    await watchdog.waitForLog((r) => r.code === 'PILOTLIGHT_HINT_UNDELIVERED');
    expect((await fetch(`${watchdog.url}/_/health`)).status).toBe(200);
  });
});
