import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, fixture, tempDir } from '../support/fork-helpers.js';
import { freePort, killAll, type LogRecord, type RunningWatchdog, startWatchdog } from '../support/watchdog.js';

const temps: Array<() => void> = [];
afterEach(async () => {
  await killAll();
  for (const remove of temps.splice(0)) remove();
});

function tempPath(name: string): string {
  const dir = tempDir();
  temps.push(dir.remove);
  return join(dir.path, name);
}

function serializing(process: string, env: Record<string, string> = {}) {
  return startWatchdog({ env: { PILOTLIGHT_MODE: 'serializing', PILOTLIGHT_PROCESS: process, ...env } });
}

/**
 * Resolves once the watchdog's stdout has been read to its end. `exited` alone is not enough:
 * the exit event can come before the last lines in the pipe have reached the test.
 */
async function outputDrained(watchdog: RunningWatchdog): Promise<void> {
  await watchdog.exited;
  const stdout = watchdog.process.stdout!;
  if (!stdout.readableEnded) await new Promise((resolve) => stdout.once('end', resolve));
}

/** The numbers n of `${prefix} n` lines in the log, as a sorted list. */
function numbered(logs: LogRecord[], prefix: string): number[] {
  return logs
    .filter((r) => typeof r.msg === 'string' && r.msg.startsWith(`${prefix} `))
    .map((r) => Number((r.msg as string).slice(prefix.length + 1)))
    .sort((a, b) => a - b);
}

function oneTo(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}

describe('logs', () => {
  it('writes only JSON objects, one per line, to stdout', async () => {
    const watchdog = await serializing(fixture('fork-log-lines.sh'), { PILOTLIGHT_ACCESS_LOG: 'true' });
    for (let i = 0; i < 3; i++) expect((await fetch(`${watchdog.url}/?i=${i}`)).status).toBe(200);
    await fetch(`${watchdog.url}/_/status`).then((r) => r.text());
    watchdog.process.kill('SIGTERM');
    await outputDrained(watchdog);
    // rawLines collects stdout lines that are not JSON and anything at all on stderr.
    expect(watchdog.rawLines).toEqual([]);
    expect(watchdog.logs.length).toBeGreaterThan(8);
    for (const record of watchdog.logs) {
      expect(typeof record, JSON.stringify(record)).toBe('object');
      expect(Array.isArray(record)).toBe(false);
      expect(typeof record.level).toBe('string');
      expect(typeof record.time).toBe('string');
      expect(typeof record.msg).toBe('string');
    }
  });

  it('merges a JSON child line and wraps a plain one, with stream, request id, function and instance', async () => {
    const watchdog = await serializing(fixture('fork-log-lines.sh'), { PILOTLIGHT_FUNCTION_NAME: 'fn-logs', PILOTLIGHT_INSTANCE: 'inst-7' });
    const res = await fetch(`${watchdog.url}/`);
    expect(await res.text()).toBe('ok\n');
    const requestId = res.headers.get('x-request-id');
    expect(requestId).toBeTruthy();
    const json = await watchdog.waitForLog((r) => r.msg === 'child json');
    // Fields at the top level, the child's level kept; nothing re-encoded as a string.
    expect(json).toMatchObject({
      level: 'error',
      answer: 42,
      nested: { a: 1 },
      stream: 'stderr',
      request_id: requestId,
      function: 'fn-logs',
      instance: 'inst-7',
    });
    expect(watchdog.logs.some((r) => typeof r.msg === 'string' && r.msg.includes('"answer"'))).toBe(false);
    const plain = await watchdog.waitForLog((r) => r.msg === 'child plain line');
    expect(plain).toMatchObject({ stream: 'stderr', request_id: requestId, function: 'fn-logs', instance: 'inst-7' });
    expect(typeof plain.level).toBe('string');
  });

  it("keeps the watchdog's attribution when a child JSON line uses the same field names", async () => {
    const watchdog = await serializing(fixture('fork-log-collide.sh'), { PILOTLIGHT_FUNCTION_NAME: 'fn-real', PILOTLIGHT_INSTANCE: 'inst-real' });
    const res = await fetch(`${watchdog.url}/`, { headers: { 'x-request-id': 'real-id' } });
    expect(await res.text()).toBe('ok\n');
    const line = await watchdog.waitForLog((r) => r.msg === 'collide');
    // Had the record held a key twice, JSON.parse would have kept the child's (last) value.
    expect(line).toMatchObject({ request_id: 'real-id', instance: 'inst-real', function: 'fn-real', stream: 'stderr', own: 'kept' });
  });

  it('tags child lines with the request id in streaming mode too', async () => {
    const watchdog = await startWatchdog({ env: { PILOTLIGHT_MODE: 'streaming', PILOTLIGHT_PROCESS: fixture('fork-log-lines.sh') } });
    const res = await fetch(`${watchdog.url}/`);
    expect(await res.text()).toBe('ok\n');
    const requestId = res.headers.get('x-request-id');
    expect(await watchdog.waitForLog((r) => r.msg === 'child plain line')).toMatchObject({ stream: 'stderr', request_id: requestId });
    expect(await watchdog.waitForLog((r) => r.msg === 'child json')).toMatchObject({ answer: 42, request_id: requestId });
  });

  it('tags child lines with the X-Request-Id the client sent', async () => {
    const watchdog = await serializing(fixture('fork-log-lines.sh'));
    const res = await fetch(`${watchdog.url}/`, { headers: { 'x-request-id': 'client-chosen-id-123' } });
    expect(res.headers.get('x-request-id')).toBe('client-chosen-id-123');
    await res.text();
    const line = await watchdog.waitForLog((r) => r.msg === 'child plain line');
    expect(line.request_id).toBe('client-chosen-id-123');
  });

  it('keeps concurrent requests apart: each line carries its own request id', async () => {
    const watchdog = await serializing(fixture('fork-log-lines.sh'));
    const ids = ['req-a', 'req-b', 'req-c', 'req-d'];
    await Promise.all(ids.map((id) => fetch(`${watchdog.url}/`, { headers: { 'x-request-id': id } }).then((r) => r.text())));
    await eventually(() => watchdog.logs.filter((r) => r.msg === 'child plain line').length === ids.length);
    const seen = watchdog.logs.filter((r) => r.msg === 'child plain line').map((r) => r.request_id);
    expect(seen.sort()).toEqual(ids);
  });

  it('marks stdout and stderr lines of an http-mode process', async () => {
    const port = await freePort();
    const watchdog = await startWatchdog({
      env: { PILOTLIGHT_UPSTREAM_URL: `http://127.0.0.1:${port}`, UPSTREAM_PORT: String(port) },
      args: ['--', fixture('fork-log-server.mjs')],
    });
    expect(await fetch(`${watchdog.url}/hello`).then((r) => r.text())).toBe('logged');
    expect(await watchdog.waitForLog((r) => r.msg === 'plain stdout /hello')).toMatchObject({ stream: 'stdout', level: 'info' });
    expect(await watchdog.waitForLog((r) => r.msg === 'json stdout' && r.path === '/hello')).toMatchObject({ stream: 'stdout', level: 'warn', path: '/hello' });
    expect(await watchdog.waitForLog((r) => r.msg === 'plain stderr /hello')).toMatchObject({ stream: 'stderr' });
  });

  it('logs a line far longer than log_buffer_size in numbered parts without blocking the child', async () => {
    const watchdog = await serializing(fixture('fork-long-line.mjs'), { PILOTLIGHT_LOG_BUFFER_SIZE: '64KiB' });
    const size = 5 * 1024 * 1024;
    const res = await fetch(`${watchdog.url}/`);
    // The child only answers once its whole stderr write went through: a watchdog that stopped
    // reading at the buffer size would leave it stuck on a full pipe and this would time out.
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
    await watchdog.waitForLog((r) => r.msg === 'after the long line');
    const parts = watchdog.logs.filter((r) => typeof r.part === 'number').sort((a, b) => (a.part as number) - (b.part as number));
    expect(parts.length).toBeGreaterThanOrEqual(size / (64 * 1024));
    expect(parts.map((r) => r.part)).toEqual(oneTo(parts.length));
    for (const record of parts) {
      expect((record.msg as string).length).toBeLessThanOrEqual(64 * 1024);
      expect(record.stream).toBe('stderr');
      expect(record.request_id).toBe(res.headers.get('x-request-id'));
    }
    expect(parts.slice(0, -1).every((r) => r.partial === true)).toBe(true);
    expect(parts.at(-1)?.partial).toBe(false);
    const alphabet = 'abcdefghijklmnopqrstuvwxyz';
    const expected = alphabet.repeat(Math.ceil(size / alphabet.length)).slice(0, size);
    const joined = parts.map((r) => r.msg).join('');
    expect(joined.length).toBe(size);
    expect(joined === expected).toBe(true);
    // The short line after it is whole again.
    expect(watchdog.logs.find((r) => r.msg === 'after the long line')?.part).toBeUndefined();
  });

  it('passes child lines through untouched with prefix_logs=false', async () => {
    const watchdog = await serializing(fixture('fork-log-lines.sh'), { PILOTLIGHT_PREFIX_LOGS: 'false' });
    expect(await fetch(`${watchdog.url}/`).then((r) => r.text())).toBe('ok\n');
    await eventually(() => watchdog.rawLines.includes('child plain line'));
    expect(watchdog.rawLines).toContain('child plain line');
    // The JSON line arrives exactly as the child wrote it: no stream, request id or time added.
    const json = await watchdog.waitForLog((r) => r.msg === 'child json');
    expect(json).toEqual({ level: 'error', msg: 'child json', answer: 42, nested: { a: 1 } });
  });

  it('accepts the of-watchdog alias prefix_logs', async () => {
    const watchdog = await startWatchdog({
      env: { mode: 'serializing', fprocess: fixture('fork-log-lines.sh'), prefix_logs: 'false' },
    });
    await fetch(`${watchdog.url}/`).then((r) => r.text());
    expect(await eventually(() => watchdog.rawLines.includes('child plain line'))).toBe(true);
  });

  it('loses no child line on SIGTERM (serializing, lines written while draining)', async () => {
    const ready = tempPath('ready');
    const release = tempPath('release');
    const n = 2000;
    const watchdog = await serializing(fixture('fork-numbered.sh'));
    const pending = fetch(`${watchdog.url}/`, {
      headers: { 'x-lines': String(n), 'x-ready-file': ready, 'x-release-file': release },
    });
    expect(await eventually(() => existsSync(ready), 10_000)).toBe(true);
    watchdog.process.kill('SIGTERM');
    await watchdog.waitForLog((r) => r.signal === 'SIGTERM');
    writeFileSync(release, '');
    const res = await pending;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('finished\n');
    expect((await watchdog.exited).code).toBe(0);
    await outputDrained(watchdog);
    expect(numbered(watchdog.logs, 'before')).toEqual(oneTo(n));
    expect(numbered(watchdog.logs, 'after')).toEqual(oneTo(n));
  });

  it('loses no line an http-mode process writes as it shuts down on SIGTERM', async () => {
    const port = await freePort();
    const n = 5000;
    const watchdog = await startWatchdog({
      env: { PILOTLIGHT_UPSTREAM_URL: `http://127.0.0.1:${port}`, UPSTREAM_PORT: String(port), SHUTDOWN_LINES: String(n) },
      args: ['--', fixture('fork-log-server.mjs')],
    });
    watchdog.process.kill('SIGTERM');
    expect((await watchdog.exited).code).toBe(0);
    await outputDrained(watchdog);
    expect(numbered(watchdog.logs, 'shutdown line')).toEqual(oneTo(n));
    // Everything the child wrote is logged before the watchdog's last word.
    const last = watchdog.logs.at(-1);
    expect(last?.msg).toBe('shutdown complete');
  });
});
