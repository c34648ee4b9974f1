import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectWatchdogError, getJson, type HttpSetup, rawExchange, send, startHttp, waitForHeld, waitUntil } from '../support/http-helpers.js';
import { killAll } from '../support/watchdog.js';

afterAll(killAll);

type SeenRequest = { method: string; headers: Record<string, string>; rawHeaders: string[]; bodyLength: number };

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Fails with `message` unless `promise` settles within `ms`: turns a deadlock into a clear failure. */
function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]);
}

describe('http mode: proxying', () => {
  let setup: HttpSetup;
  let url: string;

  beforeAll(async () => {
    setup = await startHttp('http-upstream.js');
    url = setup.watchdog.url;
  });

  it('streams a large chunked request body to the upstream and the response back, byte for byte', async () => {
    const payload = randomBytes(8 * 1024 * 1024);
    const chunks = function* () {
      for (let offset = 0; offset < payload.length; offset += 64 * 1024) yield payload.subarray(offset, offset + 64 * 1024);
    };
    const res = await send(`${url}/echo`, { method: 'POST', body: chunks() });
    expect(res.status).toBe(200);
    // Arrived chunked, as sent: the watchdog did not gather it into one Content-Length body.
    expect(res.headers['x-upstream-transfer-encoding']).toBe('chunked');
    expect(res.headers['x-upstream-content-length']).toBe('none');
    expect(res.body.length).toBe(payload.length);
    expect(sha256(res.body)).toBe(sha256(payload));
  });

  it('streams both ways at once: each request chunk is echoed back before the next is sent', async () => {
    // If either direction were buffered, the first echo could never arrive and this would stall.
    const echoed = await within(
      new Promise<string[]>((resolve, reject) => {
        const req = httpRequest(`${url}/echo`, { method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } });
        req.on('error', reject);
        let round = 0;
        const next = () => {
          round += 1;
          if (round > 5) req.end();
          else req.write(`ping-${round};`);
        };
        req.on('response', (res) => {
          const seen: string[] = [];
          let pending = '';
          res.setEncoding('utf8');
          res.on('data', (text: string) => {
            pending += text;
            let end = pending.indexOf(';');
            while (end !== -1) {
              seen.push(pending.slice(0, end));
              pending = pending.slice(end + 1);
              end = pending.indexOf(';');
              next();
            }
          });
          res.on('end', () => resolve(seen));
          res.on('error', reject);
        });
        // The first chunk goes out with the headers: the proxy sends a streamed body's request
        // line together with its first chunk, so a duplex exchange starts with the client.
        next();
      }),
      10_000,
      'the echo of a request chunk never came back before the request ended: a direction is buffered',
    );
    expect(echoed).toEqual(['ping-1', 'ping-2', 'ping-3', 'ping-4', 'ping-5']);
  });

  it('does not forward hop-by-hop request headers, including those named in Connection', async () => {
    const res = await send(`${url}/headers`, {
      headers: {
        connection: 'x-secret',
        'x-secret': 'hidden',
        'keep-alive': 'timeout=99',
        te: 'trailers',
        'proxy-authorization': 'Basic c2VjcmV0',
        'x-visible': 'yes',
      },
    });
    expect(res.status).toBe(200);
    const seen = res.json<SeenRequest>();
    const names = seen.rawHeaders.filter((_, i) => i % 2 === 0).map((name) => name.toLowerCase());
    expect(names).not.toContain('x-secret');
    expect(names).not.toContain('keep-alive');
    expect(names).not.toContain('te');
    expect(names).not.toContain('proxy-authorization');
    // The upstream connection has its own Connection header (the proxy's); the client's is gone.
    expect(seen.headers.connection ?? '').not.toMatch(/x-secret/i);
    expect(seen.headers['x-visible']).toBe('yes');
  });

  it('does not pass on hop-by-hop response headers, including those named in Connection', async () => {
    const res = await send(`${url}/hop`);
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('hop');
    expect(res.headers['x-kept']).toBe('yes');
    expect(res.headers['x-upstream-secret']).toBeUndefined();
    expect(res.headers.connection ?? '').not.toMatch(/x-upstream-secret/i);
    // The watchdog may state its own keep-alive terms, never relay the upstream's.
    expect(res.headers['keep-alive']).not.toBe('timeout=5');
  });

  it('answers 502 PILOTLIGHT_UPSTREAM_BAD_RESPONSE for a response that is not HTTP/1.1, and keeps serving', async () => {
    const res = await send(`${url}/garbage`);
    const body = expectWatchdogError(res, 502, 'PILOTLIGHT_UPSTREAM_BAD_RESPONSE');
    expect(body.message).toContain('invalid status line');
    expect((await send(`${url}/`)).status).toBe(200);
  });

  it('passes on a response with both Content-Length and chunked framing de-chunked, without the Content-Length', async () => {
    const res = await within(send(`${url}/raw?shape=both-framings`), 5_000, 'the response never ended');
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBeUndefined();
    expect(res.body.toString()).toBe('ok');
  });

  it('answers 502 Bad Gateway PILOTLIGHT_UPSTREAM_BAD_RESPONSE for a response header with a control character', async () => {
    const res = await send(`${url}/raw?shape=control-char`);
    const error = expectWatchdogError(res, 502, 'PILOTLIGHT_UPSTREAM_BAD_RESPONSE');
    expect(error.message).toMatch(/invalid response/);
    const raw = await rawExchange(setup.watchdog.port, 'GET /raw?shape=control-char HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(raw.text.startsWith('HTTP/1.1 502 Bad Gateway\r\n')).toBe(true);
  });

  it('answers 502 when the upstream closes between its head and its body, and does not send the request again', async () => {
    // A request first, so the one below runs on a reused connection: the case a retry is for.
    expect((await send(`${url}/hello`)).status).toBe(200);
    const before = (await getJson<{ headsCut: number }>(setup.upstream, '/resets')).headsCut;
    const res = await send(`${url}/raw?shape=head-then-close`);
    // Nothing of the head had reached the client, so it gets an answer rather than a closed connection.
    expectWatchdogError(res, 502, 'PILOTLIGHT_UPSTREAM_UNAVAILABLE');
    expect(res.json<{ message: string }>().message).toMatch(/^upstream \S+ failed: it closed the connection in the middle of the response body$/);
    expect((await getJson<{ headsCut: number }>(setup.upstream, '/resets')).headsCut).toBe(before + 1);
  });

  it('cuts the client connection when a body framed by the upstream closing is cut by a reset instead', async () => {
    const outcome = await send(`${url}/raw?shape=reset-until-close`).then(
      (res) => `answered ${res.status} with ${JSON.stringify(res.body.toString())}`,
      (error: NodeJS.ErrnoException) => `failed ${error.code ?? error.message}`,
    );
    // A clean end here would hand the client "partial" as if it were the whole body.
    expect(outcome).toMatch(/^failed /);
  });

  it('puts the path of upstream_url in front of every request path, as of-watchdog does', async () => {
    const prefixed = await startHttp('http-upstream.js', { upstreamPath: '/api/v1/' });
    const res = await fetch(`${prefixed.watchdog.url}/hello/there?x=1&y=%20`);
    expect(await res.text()).toBe('ok GET /api/v1/hello/there?x=1&y=%20');
    await prefixed.watchdog.kill();
  });

  it('sets X-Forwarded-For, -Proto and -Host, appending to a client X-Forwarded-For', async () => {
    const plain = (await send(`${url}/headers`)).json<SeenRequest>();
    expect(plain.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(plain.headers['x-forwarded-proto']).toBe('http');
    expect(plain.headers['x-forwarded-host']).toBe(`127.0.0.1:${setup.watchdog.port}`);

    const chained = (await send(`${url}/headers`, { headers: { 'x-forwarded-for': '203.0.113.7' } })).json<SeenRequest>();
    expect(chained.headers['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
  });

  it('forwards a request target in absolute-form as origin-form', async () => {
    const answer = await rawExchange(setup.watchdog.port, 'GET http://function.example/headers?x=1 HTTP/1.1\r\nHost: function.example\r\nConnection: close\r\n\r\n');
    expect(answer.status).toBe(200);
    expect(answer.json<{ url: string }>().url).toBe('/headers?x=1');
  });

  it('echoes a client X-Request-Id and forwards it upstream', async () => {
    const res = await send(`${url}/headers`, { headers: { 'x-request-id': 'req-from-client-42' } });
    expect(res.headers['x-request-id']).toBe('req-from-client-42');
    expect(res.json<SeenRequest>().headers['x-request-id']).toBe('req-from-client-42');
  });

  it('creates an X-Request-Id when the client sends none, the same one upstream and in the response', async () => {
    const first = await send(`${url}/headers`);
    const second = await send(`${url}/headers`);
    const id = first.headers['x-request-id'];
    expect(typeof id).toBe('string');
    expect(id).not.toBe('');
    expect(first.json<SeenRequest>().headers['x-request-id']).toBe(id);
    expect(second.headers['x-request-id']).not.toBe(id);
  });

  it('delivers a Server-Sent Event before the upstream writes the next one', async () => {
    const res = await fetch(`${url}/sse`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let received = '';
    const readUntil = async (marker: string) => {
      while (!received.includes(marker)) {
        const { value, done } = await reader.read();
        if (done) break;
        received += decoder.decode(value, { stream: true });
      }
    };
    await within(readUntil('data: one\n\n'), 5_000, 'the first event did not arrive on its own: the stream is buffered');
    expect(received).toBe('data: one\n\n');
    // Only now may the upstream write the second event; it confirms it had not done so yet.
    const signal = await getJson<{ released: boolean }>(url, '/sse/next');
    expect(signal.released).toBe(true);
    await within(readUntil('data: two\n\n'), 5_000, 'the second event never arrived');
    const rest = await reader.read();
    expect(rest.done).toBe(true);
    expect(received).toBe('data: one\n\ndata: two\n\n');
  });

  /**
   * Starts a chunked upload on a raw socket, sends one chunk, and goes away (without the
   * terminating chunk) once `goAway` resolves. Resolves with what the client had read by then.
   */
  async function abandonUpload(path: string, goAway: (received: () => string) => Promise<unknown>): Promise<string> {
    const { port } = new URL(url);
    const socket = connect(Number(port), '127.0.0.1');
    let received = '';
    socket.on('data', (data: Buffer) => (received += data.toString('latin1')));
    socket.on('error', () => {});
    socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`);
    await goAway(() => received);
    socket.destroy();
    return received;
  }

  it('reads and drops the rest of a body the function answered without reading, so the connection serves the next request', async () => {
    // 32 MiB is more than the kernel buffers between client, watchdog and function hold, so the
    // body is stuck under backpressure when the answer comes.
    const size = 32 * 1024 * 1024;
    const { port } = new URL(url);
    const socket = connect(Number(port), '127.0.0.1');
    let received = '';
    socket.on('data', (data: Buffer) => (received += data.toString('latin1')));
    const closed = new Promise((resolve, reject) => {
      socket.once('close', resolve);
      socket.once('error', reject);
    });
    const exchange = async () => {
      socket.write(`POST /early?ms=300 HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
      const chunk = Buffer.alloc(1024 * 1024, 97);
      for (let sent = 0; sent < size; sent += chunk.length) {
        if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve));
      }
      socket.write('GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      await closed;
    };
    await within(exchange(), 10_000, 'the body was never taken whole, or the second request never answered').finally(() => socket.destroy());
    const [first = '', second = ''] = received.split(/(?=HTTP\/1\.1 )/);
    expect(first.startsWith('HTTP/1.1 200 ')).toBe(true);
    expect(first.endsWith('\r\n\r\nearly')).toBe(true);
    expect(second.startsWith('HTTP/1.1 200 ')).toBe(true);
    expect(second).toContain('ok GET /next');
  });

  it('keeps serving when a client abandons a chunked upload the function has not answered', async () => {
    await abandonUpload('/hold?id=abandoned', () => waitForHeld(setup.upstream, ['abandoned']));
    // The function sees its request go away rather than holding it forever.
    await waitUntil(async () => (await getJson<{ held: string[] }>(setup.upstream, '/held')).held.length === 0, 'the held request is dropped');
    expect((await fetch(`${url}/_/health`)).status).toBe(200);
    const after = await send(`${url}/after-abandon`);
    expect(after.body.toString()).toBe('ok GET /after-abandon');
  });

  it('keeps serving when a client abandons a chunked upload the function already answered', async () => {
    const received = await abandonUpload('/early', (seen) => waitUntil(() => seen().endsWith('early'), 'the early answer arrives'));
    expect(received.startsWith('HTTP/1.1 200 ')).toBe(true);
    // Give the watchdog a moment to see the socket go while it is still counting the body.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await fetch(`${url}/_/health`)).status).toBe(200);
    const after = await send(`${url}/after-abandon`);
    expect(after.body.toString()).toBe('ok GET /after-abandon');
  });
});

describe('http mode: PILOTLIGHT_BUFFER_REQUEST_BODY', () => {
  it.each([
    { name: 'PILOTLIGHT_BUFFER_REQUEST_BODY' },
    { name: 'http_buffer_req_body' },
    // of-watchdog's older name for it, still read by of-watchdog and set by older templates.
    { name: 'buffer_http' },
  ])('$name sends a chunked request body upstream whole, with a Content-Length', async ({ name }) => {
    const { watchdog } = await startHttp('http-upstream.js', { env: { [name]: 'true' } });
    const chunks = [randomBytes(10_000), randomBytes(20_000), randomBytes(5)];
    const res = await send(`${watchdog.url}/headers`, { method: 'POST', body: chunks });
    expect(res.status).toBe(200);
    const seen = res.json<SeenRequest>();
    expect(seen.headers['transfer-encoding']).toBeUndefined();
    expect(seen.headers['content-length']).toBe('30005');
    expect(seen.bodyLength).toBe(30_005);

    const echoed = await send(`${watchdog.url}/echo`, { method: 'POST', body: chunks });
    expect(sha256(echoed.body)).toBe(sha256(Buffer.concat(chunks)));
  });
});
