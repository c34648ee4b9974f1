import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { defaultSpawn } from '../src/process/group.js';
import { Watchdog } from '../src/watchdog.js';

// An in-process watchdog, so the test can register an OpenTelemetry SDK in the same process.
const exporter = new InMemorySpanExporter();
let watchdog: Watchdog;
let url: string;
let root: string;

beforeAll(async () => {
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  root = mkdtempSync(join(tmpdir(), 'pilotlight-trace-'));
  writeFileSync(join(root, 'index.html'), '<h1>hi</h1>');
  const { config } = loadConfig(
    { PILOTLIGHT_MODE: 'static', PILOTLIGHT_STATIC_PATH: root, PILOTLIGHT_PORT: '0', PILOTLIGHT_HOST: '127.0.0.1', PILOTLIGHT_SUPPRESS_LOCK: 'true' },
    [],
  );
  watchdog = new Watchdog({ config, logger: pino({ level: 'silent' }), spawn: defaultSpawn, env: {}, writeRaw: () => {}, version: 'test' });
  url = `http://127.0.0.1:${await watchdog.start()}`;
});

afterAll(async () => {
  await watchdog.shutdown('test over');
  trace.disable();
  rmSync(root, { recursive: true, force: true });
});

describe('tracing with an OpenTelemetry SDK registered', () => {
  it('exports a server span per request, child of the caller, whose id the response names', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parentId = '00f067aa0ba902b7';
    const res = await fetch(`${url}/index.html`, { headers: { traceparent: `00-${traceId}-${parentId}-01` } });
    expect(res.status).toBe(200);
    const [, respondedTrace, respondedSpan] = (res.headers.get('traceresponse') as string).split('-');
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(1);
    const span = spans[0]!;
    expect(span.spanContext().traceId).toBe(traceId);
    expect(span.parentSpanContext?.spanId).toBe(parentId);
    expect(respondedTrace).toBe(traceId);
    expect(respondedSpan).toBe(span.spanContext().spanId);
    expect(span.spanContext().spanId).not.toBe(parentId);
    expect(span.attributes['http.response.status_code']).toBe(200);
    expect(span.attributes['http.request.method']).toBe('GET');
  });

  it('starts a new trace when none is sent, and records errors', async () => {
    exporter.reset();
    const res = await fetch(`${url}/missing.txt`);
    expect(res.status).toBe(404);
    const span = exporter.getFinishedSpans()[0]!;
    expect(span.parentSpanContext).toBeUndefined();
    expect(res.headers.get('traceresponse')).toBe(`00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`);
  });
});
