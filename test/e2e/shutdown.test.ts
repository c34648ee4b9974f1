import { Agent } from 'node:http';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { getJson, isAlive, type RawResponse, send, startHttp, waitForHeld } from '../support/http-helpers.js';
import { killAll, type LogRecord, type RunningWatchdog } from '../support/watchdog.js';

afterAll(killAll);
afterEach(killAll);

/** Status of a request on a fresh connection, or the connection error's code. */
function statusOrError(url: string): Promise<number | string> {
  return send(url).then(
    (res) => res.status,
    (error: NodeJS.ErrnoException) => error.code ?? String(error),
  );
}

/** Resolves once the watchdog has logged that it is draining (it has handled SIGTERM). */
function draining(watchdog: RunningWatchdog): Promise<LogRecord> {
  return watchdog.waitForLog((r) => r.state === 'draining');
}

/** The index of the first log record matching `predicate`, for ordering assertions. */
function logIndex(watchdog: RunningWatchdog, predicate: (r: LogRecord) => boolean): number {
  return watchdog.logs.findIndex(predicate);
}

describe('graceful shutdown', () => {
  it('finishes every in-flight request on SIGTERM, turns unready, stops the upstream and exits 0', async () => {
    // On SIGTERM the upstream logs 2000 lines and exits: its last words, which must not be lost.
    const { watchdog, upstream } = await startHttp('http-upstream.js', { env: { SIGTERM_LINES: '2000' } });
    const { pid } = await getJson<{ pid: number }>(upstream, '/pid');
    const ids = ['s1', 's2', 's3', 's4', 's5'];
    const inflight = ids.map((id) => send(`${watchdog.url}/hold?id=${id}`));
    // One more request on a keep-alive connection: a connection busy at SIGTERM stays open for
    // its response, so the test can still ask /_/ready on it while draining.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const onKeptConnection = send(`${watchdog.url}/hold?id=kept`, { agent });
    await waitForHeld(upstream, [...ids, 'kept']);

    watchdog.process.kill('SIGTERM');
    await draining(watchdog);

    await fetch(`${upstream}/release?id=kept`);
    expect((await onKeptConnection).status).toBe(200);
    const ready = await send(`${watchdog.url}/_/ready`, { agent });
    expect(ready.status).toBe(503);
    expect(ready.json()).toMatchObject({ ready: false, state: 'draining' });
    // New work is refused: on the open connection with the draining error, on a new one by not
    // taking the connection (or with a 503, should the port stay open).
    const refused = await send(`${watchdog.url}/late`, { agent });
    expect(refused.status).toBe(503);
    expect(refused.headers['x-pilotlight-error']).toBe('PILOTLIGHT_DRAINING');
    expect(['ECONNREFUSED', 503]).toContain(await statusOrError(`${watchdog.url}/late`));
    agent.destroy();

    await fetch(`${upstream}/release`);
    const answers: RawResponse[] = await Promise.all(inflight);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(answers.map((a) => a.body.toString())).toEqual(ids.map((id) => `released ${id}`));
    // The upstream had not been told to stop while it was answering them.
    expect(answers.map((a) => a.headers['x-upstream-terminating'])).toEqual(ids.map(() => 'false'));

    expect(await watchdog.exited).toEqual({ code: 0, signal: null });
    expect(isAlive(pid)).toBe(false);
    await watchdog.waitForLog((r) => r.msg === 'shutdown complete');
    // The upstream's output was read to the end before the watchdog called it complete: every
    // line, in order, ahead of "shutdown complete".
    const lastWords = watchdog.logs.filter((r) => r.msg === 'last words').map((r) => r.line);
    expect(lastWords).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
    const stopped = logIndex(watchdog, (r) => r.msg === 'upstream got SIGTERM');
    expect(stopped).toBeGreaterThan(logIndex(watchdog, (r) => r.msg === 'waiting for in-flight requests'));
    const complete = logIndex(watchdog, (r) => r.msg === 'shutdown complete');
    expect(complete).toBeGreaterThan(stopped);
    expect(complete).toBeGreaterThan(watchdog.logs.findLastIndex((r) => r.msg === 'last words'));
    expect(watchdog.logs.filter((r) => r.level === 'error' || r.level === 'fatal')).toEqual([]);
  });

  it('exits 0 at once on SIGTERM when nothing is in flight', async () => {
    const { watchdog, upstream } = await startHttp('http-upstream.js');
    const { pid } = await getJson<{ pid: number }>(upstream, '/pid');
    watchdog.process.kill('SIGTERM');
    expect(await watchdog.exited).toEqual({ code: 0, signal: null });
    expect(isAlive(pid)).toBe(false);
    await watchdog.waitForLog((r) => r.msg === 'shutdown complete');
  });

  it('keeps serving new requests during PILOTLIGHT_DRAIN_DELAY while /_/ready says 503', async () => {
    const { watchdog, upstream } = await startHttp('http-upstream.js', { env: { PILOTLIGHT_DRAIN_DELAY: '2s' } });
    const before = send(`${watchdog.url}/hold?id=before`);
    await waitForHeld(upstream, ['before']);

    watchdog.process.kill('SIGTERM');
    await draining(watchdog);
    const ready = await send(`${watchdog.url}/_/ready`);
    expect(ready.status).toBe(503);
    expect(ready.json()).toMatchObject({ ready: false, state: 'draining' });
    expect((await fetch(`${watchdog.url}/_/health`)).status).toBe(200);

    const during = await send(`${watchdog.url}/during-delay`);
    expect(during.status).toBe(200);
    expect(during.body.toString()).toBe('ok GET /during-delay');
    // The client is told not to reuse the connection, so its next request goes elsewhere.
    expect(during.headers.connection).toBe('close');

    await fetch(`${upstream}/release`);
    expect((await before).status).toBe(200);
    expect(await watchdog.exited).toEqual({ code: 0, signal: null });
    await watchdog.waitForLog((r) => r.msg === 'shutdown complete');
  });

  it('SIGKILLs an upstream that ignores SIGTERM once the grace period is over, and still exits 0', async () => {
    const { watchdog, upstream } = await startHttp('http-upstream.js', {
      env: { IGNORE_SIGTERM: '1', PILOTLIGHT_GRACE_PERIOD: '1s' },
    });
    const { pid } = await getJson<{ pid: number }>(upstream, '/pid');
    watchdog.process.kill('SIGTERM');
    expect(await watchdog.exited).toEqual({ code: 0, signal: null });
    await watchdog.waitForLog((r) => r.msg === 'shutdown complete');
    expect(logIndex(watchdog, (r) => r.msg === 'ignoring SIGTERM')).toBeGreaterThan(-1);
    expect(isAlive(pid)).toBe(false);
  });

  it('gives up on a request that outlives the grace period and exits 0', async () => {
    const { watchdog, upstream } = await startHttp('http-upstream.js', { env: { PILOTLIGHT_GRACE_PERIOD: '1s' } });
    const { pid } = await getJson<{ pid: number }>(upstream, '/pid');
    const stuck = send(`${watchdog.url}/hold?id=stuck`).then(
      (res) => res.status,
      (error: NodeJS.ErrnoException) => error.code,
    );
    await waitForHeld(upstream, ['stuck']);
    watchdog.process.kill('SIGTERM');
    expect(await watchdog.exited).toEqual({ code: 0, signal: null });
    await watchdog.waitForLog((r) => r.code === 'PILOTLIGHT_GRACE_EXCEEDED');
    await watchdog.waitForLog((r) => r.msg === 'shutdown complete');
    expect(isAlive(pid)).toBe(false);
    // It was never answered as if it had succeeded.
    expect(await stuck).not.toBe(200);
  });
});
