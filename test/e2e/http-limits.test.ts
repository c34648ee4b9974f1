import { connect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  expectWatchdogError,
  getJson,
  type HttpSetup,
  rawExchange,
  releaseAll,
  send,
  startHttp,
  waitForHeld,
  waitUntil,
} from '../support/http-helpers.js';
import { killAll } from '../support/watchdog.js';

afterAll(killAll);

describe('http mode: concurrency limit', () => {
  let setup: HttpSetup | undefined;

  afterEach(async () => {
    // Held requests would otherwise keep the watchdog from shutting down quickly.
    if (setup) await releaseAll(setup.upstream);
    await killAll();
    setup = undefined;
  });

  it('answers 429 PILOTLIGHT_OVERLOADED at once with max_inflight=1 and no queue; /_/ready says 429', async () => {
    setup = await startHttp('http-upstream.js', { env: { PILOTLIGHT_MAX_INFLIGHT: '1' } });
    const { watchdog, upstream } = setup;
    const first = send(`${watchdog.url}/hold?id=first`);
    await waitForHeld(upstream, ['first']);

    const second = await send(`${watchdog.url}/hold?id=second`);
    expectWatchdogError(second, 429, 'PILOTLIGHT_OVERLOADED');
    expect(Number(second.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // The refused request never reached the function.
    expect((await getJson<{ held: string[] }>(upstream, '/held')).held).toEqual(['first']);

    const ready = await fetch(`${watchdog.url}/_/ready`);
    expect(ready.status).toBe(429);

    await releaseAll(upstream);
    const done = await first;
    expect(done.status).toBe(200);
    expect(done.body.toString()).toBe('released first');
    expect((await fetch(`${watchdog.url}/_/ready`)).status).toBe(200);
  });

  it('queues up to max_queue requests, which then succeed, and refuses the one beyond it', async () => {
    setup = await startHttp('http-upstream.js', { env: { PILOTLIGHT_MAX_INFLIGHT: '1', PILOTLIGHT_MAX_QUEUE: '1' } });
    const { watchdog, upstream } = setup;
    const first = send(`${watchdog.url}/hold?id=first`);
    await waitForHeld(upstream, ['first']);
    const second = send(`${watchdog.url}/hold?id=second`);
    await waitUntil(
      async () => (await getJson<{ queued: number }>(watchdog.url, '/_/status')).queued === 1,
      'the second request is queued',
    );
    const status = await getJson<{ inflight: number; queued: number }>(watchdog.url, '/_/status');
    expect(status).toMatchObject({ inflight: 1, queued: 1 });

    const third = await send(`${watchdog.url}/hold?id=third`);
    expectWatchdogError(third, 429, 'PILOTLIGHT_OVERLOADED');
    expect(third.headers['retry-after']).toBeDefined();

    // The queued request reaches the function only once the slot is free.
    expect((await getJson<{ held: string[] }>(upstream, '/held')).held).toEqual(['first']);
    await fetch(`${upstream}/release?id=first`);
    expect((await first).status).toBe(200);
    await waitForHeld(upstream, ['second']);
    await fetch(`${upstream}/release?id=second`);
    const queued = await second;
    expect(queued.status).toBe(200);
    expect(queued.body.toString()).toBe('released second');
  });

  it('answers 429 PILOTLIGHT_QUEUE_TIMEOUT when no slot frees up within queue_timeout', async () => {
    setup = await startHttp('http-upstream.js', {
      env: { PILOTLIGHT_MAX_INFLIGHT: '1', PILOTLIGHT_MAX_QUEUE: '1', PILOTLIGHT_QUEUE_TIMEOUT: '300ms' },
    });
    const { watchdog, upstream } = setup;
    const first = send(`${watchdog.url}/hold?id=first`);
    await waitForHeld(upstream, ['first']);

    const waited = await send(`${watchdog.url}/hold?id=second`);
    expectWatchdogError(waited, 429, 'PILOTLIGHT_QUEUE_TIMEOUT');
    expect(Number(waited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // A timed-out request leaves the queue: nothing is queued and the function never saw it.
    expect(await getJson(watchdog.url, '/_/status')).toMatchObject({ inflight: 1, queued: 0 });

    await releaseAll(upstream);
    expect((await first).status).toBe(200);
    expect((await getJson<{ held: string[] }>(upstream, '/held')).held).toEqual([]);
  });
});

describe('http mode: body size limit', () => {
  let setup: HttpSetup;

  beforeAll(async () => {
    setup = await startHttp('http-upstream.js', { env: { PILOTLIGHT_MAX_BODY_SIZE: '1KiB' } });
  });
  afterAll(killAll);

  it('answers 413 for a Content-Length over max_body_size without bothering the function', async () => {
    const tooBig = await send(`${setup.watchdog.url}/headers`, { method: 'POST', body: Buffer.alloc(1025, 'x') });
    const body = expectWatchdogError(tooBig, 413, 'PILOTLIGHT_BODY_TOO_LARGE');
    expect(body.message).toContain('1024');

    const fits = await send(`${setup.watchdog.url}/headers`, { method: 'POST', body: Buffer.alloc(1024, 'x') });
    expect(fits.status).toBe(200);
    expect(fits.json<{ bodyLength: number }>().bodyLength).toBe(1024);
  });

  it('answers Expect: 100-continue with the 413 instead of a 100 when the declared body is too large, and with a 100 when it fits', async () => {
    const exchange = (length: number, sendBody: (socket: ReturnType<typeof connect>) => void) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(setup.watchdog.port, '127.0.0.1');
        let text = '';
        socket.on('data', (data: Buffer) => {
          text += data.toString('latin1');
          if (text.startsWith('HTTP/1.1 100 ') && text.endsWith('\r\n\r\n') && !text.includes('HTTP/1.1 2')) sendBody(socket);
        });
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
        socket.write(`POST /headers HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Length: ${length}\r\n\r\n`);
      });
    const refused = await exchange(1_000_000, () => {
      throw new Error('sent 100 Continue for a body over the limit');
    });
    expect(refused.split('\r\n')[0]).toBe('HTTP/1.1 413 Payload Too Large');
    expect(refused).toContain('PILOTLIGHT_BODY_TOO_LARGE');

    const accepted = await exchange(10, (socket) => socket.write('0123456789'));
    const [first, ...rest] = accepted.split(/(?=HTTP\/1\.1 )/);
    expect(first).toBe('HTTP/1.1 100 Continue\r\n\r\n');
    expect(rest.join('')).toMatch(/^HTTP\/1\.1 200 [\s\S]*"bodyLength":10/);
  });

  it('answers 413 for a chunked body that grows past max_body_size', async () => {
    const chunks = function* () {
      for (let i = 0; i < 8; i++) yield Buffer.alloc(256, 'y');
    };
    const tooBig = await send(`${setup.watchdog.url}/headers`, { method: 'POST', body: chunks() });
    expectWatchdogError(tooBig, 413, 'PILOTLIGHT_BODY_TOO_LARGE');

    const fits = await send(`${setup.watchdog.url}/headers`, { method: 'POST', body: [Buffer.alloc(512), Buffer.alloc(512)] });
    expect(fits.status).toBe(200);
    expect(fits.json<{ bodyLength: number }>().bodyLength).toBe(1024);
  });
});

describe('http mode: exec timeout', () => {
  let setup: HttpSetup;

  beforeAll(async () => {
    setup = await startHttp('http-upstream.js', { env: { PILOTLIGHT_EXEC_TIMEOUT: '400ms' } });
  });
  afterAll(async () => {
    await releaseAll(setup.upstream);
    await killAll();
  });

  it('answers 504 PILOTLIGHT_EXEC_TIMEOUT when the function takes longer than exec_timeout', async () => {
    const res = await send(`${setup.watchdog.url}/hold?id=slow`);
    const body = expectWatchdogError(res, 504, 'PILOTLIGHT_EXEC_TIMEOUT');
    expect(body.message).toContain('400 ms');
    expect(res.headers['x-request-id']).toBe(body.requestId);
    // The proxied request was abandoned, so the function's side of it was closed too.
    await waitUntil(async () => (await getJson<{ held: string[] }>(setup.upstream, '/held')).held.length === 0, 'the upstream request is closed');
  });

  it('lets X-Timeout shorten the limit but not lengthen it', async () => {
    const shorter = await send(`${setup.watchdog.url}/hold?id=short`, { headers: { 'x-timeout': '150ms' } });
    expect(expectWatchdogError(shorter, 504, 'PILOTLIGHT_EXEC_TIMEOUT').message).toContain('150 ms');

    const longer = await send(`${setup.watchdog.url}/hold?id=long`, { headers: { 'x-timeout': '1m' } });
    expect(expectWatchdogError(longer, 504, 'PILOTLIGHT_EXEC_TIMEOUT').message).toContain('400 ms');

    // A request that finishes within its X-Timeout is untouched.
    const quick = await send(`${setup.watchdog.url}/quick`, { headers: { 'x-timeout': '5s' } });
    expect(quick.status).toBe(200);
    expect(quick.body.toString()).toBe('ok GET /quick');
  });

  it('answers 400 PILOTLIGHT_BAD_TIMEOUT for an X-Timeout that is not a duration', async () => {
    const res = await send(`${setup.watchdog.url}/hold?id=never`, { headers: { 'x-timeout': 'soon' } });
    const body = expectWatchdogError(res, 400, 'PILOTLIGHT_BAD_TIMEOUT');
    expect(body.message).toContain('soon');
    expect((await getJson<{ held: string[] }>(setup.upstream, '/held')).held).not.toContain('never');
  });
});

describe('http mode: upstream closing idle keep-alive connections', () => {
  afterAll(killAll);

  it('never answers 502 when requests arrive just as the upstream drops an idle connection', async () => {
    // The upstream closes connections idle for 300 ms without saying so; CLOSE_LAG_MS widens the
    // moment of closing so that requests sent into it really are lost (see the fixture).
    const { watchdog } = await startHttp('http-keepalive.js', { env: { KEEPALIVE_MS: '300', CLOSE_LAG_MS: '40' } });
    const answers: { status: number; body: string }[] = [];
    // Gaps straddle the idle timeout, so some requests go out on a pooled connection the
    // upstream is closing at that moment.
    for (let i = 0; i < 30; i++) {
      await new Promise((r) => setTimeout(r, 250 + ((i * 37) % 101)));
      const res = await send(`${watchdog.url}/item/${i}`);
      answers.push({ status: res.status, body: res.body.toString() });
    }
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    // The trap was set: the upstream did close idle connections along the way.
    const connections = new Set(answers.map((a) => /on connection (\d+)/.exec(a.body)?.[1]));
    expect(connections.size).toBeGreaterThan(1);
  });

  it('retries a GET only after a reused connection broke: a fresh connection failing is answered 502 at once', async () => {
    // With no keep-alive every exchange has a connection of its own, never a reused one.
    const { watchdog, upstream } = await startHttp('http-upstream.js', { env: { PILOTLIGHT_UPSTREAM_KEEPALIVE: '0' } });
    const res = await send(`${watchdog.url}/reset`);
    expectWatchdogError(res, 502, 'PILOTLIGHT_UPSTREAM_UNAVAILABLE');
    expect((await getJson<{ resets: number }>(upstream, '/resets')).resets).toBe(1);
  });

  // Only bodiless idempotent requests are retried (a streamed body is consumed, and a POST may
  // have been processed), so a POST sent into the closing moment still gets a 502
  // PILOTLIGHT_UPSTREAM_UNAVAILABLE (ECONNRESET). Avoiding that needs the proxy to stop reusing a
  // connection before the upstream drops it, which the watchdog cannot know today.
  it.todo('never answers 502 to a POST sent on a connection the upstream is closing');
});

describe('http mode: requests that are not HTTP, too large, or too slow', () => {
  let setup: HttpSetup;

  beforeAll(async () => {
    setup = await startHttp('http-upstream.js', { env: { PILOTLIGHT_READ_TIMEOUT: '500ms' } });
  });
  afterAll(killAll);

  it('answers 400 PILOTLIGHT_BAD_REQUEST, with the parser reason, to bytes that are not HTTP/1.1', async () => {
    const res = await rawExchange(setup.watchdog.port, 'GARBAGE / HTTP/1.1\r\nhost: x\r\n\r\n');
    expect(expectWatchdogError(res, 400, 'PILOTLIGHT_BAD_REQUEST').message).toContain('method');
    expect(res.headers.connection).toBe('close');
  });

  it('answers 431 PILOTLIGHT_HEADERS_TOO_LARGE to headers over 16 KiB', async () => {
    const res = await send(`${setup.watchdog.url}/headers`, { headers: { 'x-big': 'a'.repeat(20_000) } });
    expectWatchdogError(res, 431, 'PILOTLIGHT_HEADERS_TOO_LARGE');
  });

  it('answers 408 PILOTLIGHT_READ_TIMEOUT to headers that do not finish within read_timeout', async () => {
    const res = await rawExchange(setup.watchdog.port, 'GET /headers HTTP/1.1\r\nhost: x\r\nx-slow: still coming');
    expectWatchdogError(res, 408, 'PILOTLIGHT_READ_TIMEOUT');
  });
});
