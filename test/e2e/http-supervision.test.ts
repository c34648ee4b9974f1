import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { getJson, isAlive, releaseAll, send, startHttp, waitForHeld } from '../support/http-helpers.js';
import { FIXTURES, killAll, type LogRecord, startWatchdog } from '../support/watchdog.js';

type ErrorBody = { code: string; message: string };

const VERSION = (JSON.parse(readFileSync(new URL('../../watchdog/package.json', import.meta.url), 'utf8')) as { version: string }).version;

// LISTEN_GATE files: the fixture listens only once its gate exists, so a test decides exactly
// how long the upstream stays "started but not answering".
let gates: string;
beforeAll(() => {
  gates = mkdtempSync(join(tmpdir(), 'pilotlight-gates-'));
});
afterAll(async () => {
  await killAll();
  rmSync(gates, { recursive: true, force: true });
});
afterEach(killAll);

const openGate = (gate: string) => writeFileSync(gate, '');
const closeGate = (gate: string) => rmSync(gate, { force: true });

describe('http mode: startup', () => {
  it('is not ready until the upstream answers, then ready', async () => {
    const gate = join(gates, 'startup');
    const { watchdog } = await startHttp('http-upstream.js', {
      env: { LISTEN_GATE: gate, PILOTLIGHT_FUNCTION_NAME: 'hello', PILOTLIGHT_INSTANCE: 'hello-7f9c' },
      waitFor: 'listening',
    });

    // The process runs but does not listen yet.
    await watchdog.waitForLog((r) => r.msg === 'function process started');
    const notReady = await fetch(`${watchdog.url}/_/ready`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toMatchObject({ ready: false, state: 'starting' });
    const early = await send(`${watchdog.url}/`);
    expect(early.status).toBe(503);
    expect(early.headers['x-pilotlight-error']).toBe('PILOTLIGHT_NOT_READY');
    expect(early.headers['retry-after']).toBeDefined();
    expect(early.json<ErrorBody>().code).toBe('PILOTLIGHT_NOT_READY');
    expect(await getJson(watchdog.url, '/_/status')).toMatchObject({ state: 'starting' });

    openGate(gate);
    await watchdog.waitForState('ready');
    const ready = await fetch(`${watchdog.url}/_/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, state: 'ready' });
    const served = await send(`${watchdog.url}/after`);
    expect(served.status).toBe(200);
    expect(served.body.toString()).toBe('ok GET /after');
  });

  it('refuses many requests on one kept-alive connection while starting without piling up listeners', async () => {
    const gate = join(gates, 'refusals');
    const { watchdog } = await startHttp('http-upstream.js', { env: { LISTEN_GATE: gate }, waitFor: 'listening' });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++) {
        const body = i % 2 === 0 ? undefined : `body ${i}`;
        statuses.push((await send(`${watchdog.url}/`, { method: body ? 'POST' : 'GET', body, agent })).status);
      }
      expect(statuses).toEqual(Array.from({ length: 20 }, () => 503));
    } finally {
      agent.destroy();
    }
    // Node warns on stderr once an emitter has more than 10 listeners of one kind.
    expect(watchdog.rawLines.filter((line) => line.includes('MaxListenersExceededWarning'))).toEqual([]);
  });

  it('says in the log why it is still starting when the upstream does not answer for 5 s', async () => {
    const gate = join(gates, 'slow-listen');
    const { watchdog, upstream } = await startHttp('http-upstream.js', { env: { LISTEN_GATE: gate }, waitFor: 'listening' });
    const warning = await watchdog.waitForLog((r) => r.code === 'PILOTLIGHT_UPSTREAM_NOT_ANSWERING', 20_000);
    expect(warning).toMatchObject({ level: 'warn', upstreamUrl: upstream, last: 'ECONNREFUSED' });
    expect(warning.msg).toContain(upstream);
    expect(warning.msg).toContain('upstream_url');
    expect(await getJson(watchdog.url, '/_/status')).toMatchObject({ state: 'starting' });

    openGate(gate);
    await watchdog.waitForState('ready');
  });

  it('exits 1 with PILOTLIGHT_START_FAILED naming the setting when its port is taken', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as { port: number };
    try {
      for (const setting of ['PILOTLIGHT_PORT', 'PILOTLIGHT_METRICS_PORT']) {
        const failing = await startWatchdog({
          env: { PILOTLIGHT_MODE: 'static', PILOTLIGHT_STATIC_PATH: tmpdir(), [setting]: String(port) },
          waitFor: 'nothing',
        });
        expect((await failing.exited).code).toBe(1);
        const fatal = failing.logs.find((r) => r.level === 'fatal');
        expect(fatal).toMatchObject({ code: 'PILOTLIGHT_START_FAILED' });
        expect(fatal?.msg).toContain(`port ${port}`);
        expect(fatal?.msg).toContain(setting);
        expect(fatal?.msg).toContain('EADDRINUSE');
      }
    } finally {
      taken.close();
    }
  });

  it('exits 1 with PILOTLIGHT_START_FAILED when another process already listens on the port of upstream_url', async () => {
    const taken = createServer((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nforeign'));
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as { port: number };
    try {
      const failing = await startWatchdog({
        env: { UPSTREAM_PORT: String(port), PILOTLIGHT_UPSTREAM_URL: `http://127.0.0.1:${port}` },
        args: ['--', process.execPath, join(FIXTURES, 'http-upstream.js')],
        waitFor: 'nothing',
      });
      // Not ready on the foreign server's answers: refused before the function is started.
      expect((await failing.exited).code).toBe(1);
      const fatal = failing.logs.find((r) => r.level === 'fatal');
      expect(fatal).toMatchObject({ code: 'PILOTLIGHT_START_FAILED' });
      expect(fatal?.msg).toContain(`another process already listens on port ${port}`);
      expect(failing.logs.some((r) => r.state === 'ready')).toBe(false);
    } finally {
      taken.close();
    }
  });

  it('reports health and status', async () => {
    const { watchdog } = await startHttp('http-upstream.js', { env: { PILOTLIGHT_FUNCTION_NAME: 'hello', PILOTLIGHT_INSTANCE: 'hello-7f9c' } });
    const health = await fetch(`${watchdog.url}/_/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', state: 'ready' });

    const status = await fetch(`${watchdog.url}/_/status`);
    expect(status.status).toBe(200);
    expect(status.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await status.json()).toEqual({
      state: 'ready',
      mode: 'http',
      runtime: null,
      function: 'hello',
      instance: 'hello-7f9c',
      inflight: 0,
      queued: 0,
      specializeMs: null,
      version: VERSION,
    });
  });

  it('counts a request in flight in /_/status', async () => {
    const { watchdog, upstream } = await startHttp('http-upstream.js');
    const held = send(`${watchdog.url}/hold?id=counted`);
    await waitForHeld(upstream, ['counted']);
    expect(await getJson(watchdog.url, '/_/status')).toMatchObject({ inflight: 1, queued: 0 });
    await releaseAll(upstream);
    expect((await held).status).toBe(200);
    expect(await getJson(watchdog.url, '/_/status')).toMatchObject({ inflight: 0 });
  });
});

describe('http mode: supervision', () => {
  it('answers 502 PILOTLIGHT_UPSTREAM_EXITED naming the signal, is unready while down, then restarts', async () => {
    const gate = join(gates, 'killed');
    openGate(gate);
    const { watchdog, upstream } = await startHttp('http-upstream.js', { env: { LISTEN_GATE: gate } });
    const { pid } = await getJson<{ pid: number }>(upstream, '/pid');
    const inflight = send(`${watchdog.url}/hold?id=doomed`);
    await waitForHeld(upstream, ['doomed']);

    // The restarted process will wait at the gate, so "down" lasts until the test opens it.
    closeGate(gate);
    process.kill(pid, 'SIGKILL');

    const failed = await inflight;
    expect(failed.status).toBe(502);
    expect(failed.headers['x-pilotlight-error']).toBe('PILOTLIGHT_UPSTREAM_EXITED');
    const body = failed.json<ErrorBody>();
    expect(body.code).toBe('PILOTLIGHT_UPSTREAM_EXITED');
    expect(body.message).toContain('SIGKILL');

    await watchdog.waitForLog((r) => r.msg === 'function process started' && r.pid !== pid);
    const ready = await fetch(`${watchdog.url}/_/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ ready: false, state: 'starting' });
    const whileDown = await send(`${watchdog.url}/`);
    expect(whileDown.status).toBe(503);
    expect(whileDown.json<ErrorBody>().code).toBe('PILOTLIGHT_NOT_READY');
    const restartLog = await watchdog.waitForLog((r) => r.code === 'PILOTLIGHT_UPSTREAM_RESTARTS');
    expect(restartLog).toMatchObject({ level: 'warn', signal: 'SIGKILL' });

    openGate(gate);
    await watchdog.waitForState('ready');
    const again = await send(`${watchdog.url}/pid`);
    expect(again.status).toBe(200);
    const newPid = again.json<{ pid: number }>().pid;
    expect(newPid).not.toBe(pid);
    expect(isAlive(pid)).toBe(false);
    expect((await fetch(`${watchdog.url}/_/health`)).status).toBe(200);
  });

  it('answers 502 naming the exit code when the upstream exits under a request', async () => {
    const { watchdog } = await startHttp('http-upstream.js');
    const crashed = await send(`${watchdog.url}/crash?code=3`);
    expect(crashed.status).toBe(502);
    expect(crashed.headers['x-pilotlight-error']).toBe('PILOTLIGHT_UPSTREAM_EXITED');
    const body = crashed.json<ErrorBody>();
    expect(body.code).toBe('PILOTLIGHT_UPSTREAM_EXITED');
    expect(body.message).toContain('exited with code 3');

    await watchdog.waitForState('ready');
    expect((await send(`${watchdog.url}/`)).status).toBe(200);
  });

  it('turns /_/health 503 after 3 failed probes of ready_path, says why in the log, and recovers', async () => {
    const { watchdog, upstream } = await startHttp('http-upstream.js', {
      env: { PILOTLIGHT_READY_PATH: '/healthz', PILOTLIGHT_HEALTHCHECK_INTERVAL: '100ms' },
    });
    expect((await fetch(`${watchdog.url}/_/health`)).status).toBe(200);

    await getJson(upstream, '/sick?on=1');
    const unhealthy = await watchdog.waitForLog((r) => r.code === 'PILOTLIGHT_UPSTREAM_UNHEALTHY');
    expect(unhealthy).toMatchObject({ level: 'warn', last: 'GET /healthz answered 503' });
    expect((await fetch(`${watchdog.url}/_/health`)).status).toBe(503);

    await getJson(upstream, '/sick?on=0');
    await watchdog.waitForLog((r) => r.msg === 'upstream answers probes again');
    expect((await fetch(`${watchdog.url}/_/health`)).status).toBe(200);
  });

  it('goes failed after max_restarts when the upstream keeps exiting, and says so on /_/health', async () => {
    const { watchdog } = await startHttp('http-exit-at-once.js', {
      env: { PILOTLIGHT_MAX_RESTARTS: '2', EXIT_CODE: '7' },
      waitFor: 'listening',
    });
    await watchdog.waitForState('failed');

    const health = await fetch(`${watchdog.url}/_/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: 'unhealthy', state: 'failed' });
    const ready = await fetch(`${watchdog.url}/_/ready`);
    expect(ready.status).toBe(503);
    const refused = await send(`${watchdog.url}/`);
    expect(refused.status).toBe(503);
    expect(refused.headers['x-pilotlight-error']).toBe('PILOTLIGHT_FAILED');
    expect(refused.json<ErrorBody>().code).toBe('PILOTLIGHT_FAILED');

    // One start and two restarts, then it gave up; the watchdog itself keeps serving /_/.
    // (Log lines before the `failed` transition are all in once that one is.)
    const failed = await watchdog.waitForLog((r) => r.state === 'failed');
    expect(String(failed.reason)).toContain('exited with code 7');
    const starts = watchdog.logs.filter((r: LogRecord) => r.msg === 'function process started');
    expect(starts).toHaveLength(3);
    const restarts = watchdog.logs.filter((r: LogRecord) => r.code === 'PILOTLIGHT_UPSTREAM_RESTARTS');
    expect(restarts).toHaveLength(2);
    expect(restarts.every((r) => r.exitCode === 7)).toBe(true);
    expect(watchdog.process.exitCode).toBeNull();
  });

  it('retries a command that cannot be spawned like one that exits, then goes failed', async () => {
    const watchdog = await startWatchdog({
      env: { PILOTLIGHT_MODE: 'http', PILOTLIGHT_UPSTREAM_URL: 'http://127.0.0.1:9', PILOTLIGHT_MAX_RESTARTS: '1' },
      args: ['--', '/nonexistent/pilotlight-binary'],
      waitFor: 'listening',
    });
    await watchdog.waitForState('failed');
    const failed = await watchdog.waitForLog((r) => r.state === 'failed');
    expect(String(failed.reason)).toContain('could not be started (ENOENT)');
    expect(watchdog.logs.filter((r: LogRecord) => r.code === 'PILOTLIGHT_START_FAILED')).toHaveLength(2);
    expect(watchdog.logs.filter((r: LogRecord) => r.code === 'PILOTLIGHT_UPSTREAM_RESTARTS')).toHaveLength(1);
  });

  it('counts crashes soon after a successful start towards max_restarts', async () => {
    const { watchdog } = await startHttp('http-upstream.js', { env: { PILOTLIGHT_MAX_RESTARTS: '2' } });
    // None of these runs lasts the stable period, so they are failed runs in a row: two are
    // restarted, the third crash is one too many.
    for (let round = 1; round <= 2; round++) {
      const crashed = await send(`${watchdog.url}/crash?code=${round}`);
      expect(crashed.json<ErrorBody>().message).toContain(`exited with code ${round}`);
      await watchdog.waitForState('ready');
      expect((await send(`${watchdog.url}/`)).status).toBe(200);
    }
    const last = await send(`${watchdog.url}/crash?code=9`);
    expect(last.json<ErrorBody>().code).toBe('PILOTLIGHT_UPSTREAM_EXITED');
    await watchdog.waitForState('failed');
    expect((await fetch(`${watchdog.url}/_/health`)).status).toBe(503);
  });
});
