import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { fixture, killMarked, rawRequest, uniqueMarker } from '../support/fork-helpers.js';
import { killAll, startWatchdog } from '../support/watchdog.js';

afterEach(killAll);

function serializing(process: string, env: Record<string, string> = {}) {
  return startWatchdog({ env: { PILOTLIGHT_MODE: 'serializing', PILOTLIGHT_PROCESS: process, ...env } });
}

describe('serializing mode', () => {
  it('pipes the body to stdin and answers stdout with the default content type', async () => {
    const watchdog = await serializing('cat');
    const res = await fetch(`${watchdog.url}/echo`, { method: 'POST', body: 'hello\nserializing\0bytes' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('x-pilotlight-error')).toBeNull();
    expect(await res.text()).toBe('hello\nserializing\0bytes');
  });

  it('answers with PILOTLIGHT_CONTENT_TYPE when set', async () => {
    const watchdog = await serializing('cat', { PILOTLIGHT_CONTENT_TYPE: 'text/plain; charset=utf-8' });
    const res = await fetch(`${watchdog.url}/`, { method: 'POST', body: 'typed' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await res.text()).toBe('typed');
  });

  it('answers output up to PILOTLIGHT_MAX_RESPONSE_SIZE, and 500 PILOTLIGHT_RESPONSE_TOO_LARGE past it', async () => {
    const watchdog = await serializing('cat', { PILOTLIGHT_MAX_RESPONSE_SIZE: '1KiB' });
    const fits = await fetch(`${watchdog.url}/`, { method: 'POST', body: 'x'.repeat(1024) });
    expect(fits.status).toBe(200);
    expect((await fits.text()).length).toBe(1024);

    const tooMuch = await fetch(`${watchdog.url}/`, { method: 'POST', body: 'x'.repeat(1025) });
    expect(tooMuch.status).toBe(500);
    expect(tooMuch.headers.get('x-pilotlight-error')).toBe('PILOTLIGHT_RESPONSE_TOO_LARGE');
    expect(((await tooMuch.json()) as { message: string }).message).toContain('1024 bytes');
  });

  it('stops a function that writes without end once past PILOTLIGHT_MAX_RESPONSE_SIZE', async () => {
    // `yes` never exits: without the limit this would end in the exec timeout's 504.
    const watchdog = await serializing('yes', { PILOTLIGHT_MAX_RESPONSE_SIZE: '1MiB' });
    const res = await fetch(`${watchdog.url}/`);
    expect(res.status).toBe(500);
    expect(res.headers.get('x-pilotlight-error')).toBe('PILOTLIGHT_RESPONSE_TOO_LARGE');
  });

  it('answers an empty body for a GET with no output', async () => {
    const watchdog = await serializing('true');
    const res = await fetch(`${watchdog.url}/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });

  it('hands method, path, query and headers over as of-watchdog environment variables', async () => {
    const watchdog = await serializing(fixture('fork-env.mjs'));
    const res = await fetch(`${watchdog.url}/some/path?a=1&b=two`, {
      method: 'PUT',
      body: '{}',
      // On the wire, the UTF-8 bytes of "café" (fetch writes each char below 256 as one byte).
      headers: { 'content-type': 'application/json', 'X-Custom-Header': 'custom value', 'X-Name': Buffer.from('café').toString('latin1') },
    });
    expect(res.status).toBe(200);
    const env = (await res.json()) as Record<string, string>;
    expect(env).toMatchObject({
      Http_X_Name: 'café',
      Http_Method: 'PUT',
      Http_Path: '/some/path',
      Http_Query: 'a=1&b=two',
      Http_Content_Type: 'application/json',
      Http_X_Custom_Header: 'custom value',
    });
  });

  it('hands over Http_Path percent-decoded, as of-watchdog does, and as sent when it does not decode', async () => {
    const watchdog = await serializing(fixture('fork-env.mjs'));
    const path = async (sent: string) => ((await fetch(`${watchdog.url}${sent}`).then((r) => r.json())) as Record<string, string>).Http_Path;
    expect(await path('/caf%C3%A9/a%20b?x=%20')).toBe('/café/a b');
    expect(await path('/bad%E0%A4%A/x')).toBe('/bad%E0%A4%A/x');
    expect(await path('/nul%00byte')).toBe('/nul%00byte');
  });

  it('leaves Http_Query unset without a query string', async () => {
    const watchdog = await serializing(fixture('fork-env.mjs'));
    // A header named Query must not pose as the query string.
    const env = (await fetch(`${watchdog.url}/plain`, { headers: { query: 'spoofed' } }).then((r) => r.json())) as Record<string, string>;
    expect(env.Http_Method).toBe('GET');
    expect(env.Http_Path).toBe('/plain');
    expect(env).not.toHaveProperty('Http_Query');
  });

  it('answers a non-zero exit with 500 PILOTLIGHT_FUNCTION_FAILED and logs its stderr', async () => {
    const watchdog = await serializing(fixture('fork-fail.sh'));
    const res = await fetch(`${watchdog.url}/`, { method: 'POST', body: 'x' });
    expect(res.status).toBe(500);
    expect(res.headers.get('x-pilotlight-error')).toBe('PILOTLIGHT_FUNCTION_FAILED');
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as { code: string; message: string; requestId: string };
    expect(body.code).toBe('PILOTLIGHT_FUNCTION_FAILED');
    expect(body.message).toContain('exited with code 3');
    expect(body.requestId).toBe(res.headers.get('x-request-id'));
    const line = await watchdog.waitForLog((r) => r.msg === 'fork-fail: going down');
    expect(line).toMatchObject({ stream: 'stderr', request_id: body.requestId });
    // The failure itself is logged too, with the same request id.
    const failure = await watchdog.waitForLog((r) => r.code === 'PILOTLIGHT_FUNCTION_FAILED');
    expect(failure).toMatchObject({ level: 'warn', request_id: body.requestId });
  });

  it('answers a command that does not exist with 500 PILOTLIGHT_SPAWN_FAILED and stays up', async () => {
    const watchdog = await serializing('/nonexistent/pilotlight-no-such-command');
    const res = await fetch(`${watchdog.url}/`, { method: 'POST', body: 'x' });
    expect(res.status).toBe(500);
    expect(res.headers.get('x-pilotlight-error')).toBe('PILOTLIGHT_SPAWN_FAILED');
    const body = (await res.json()) as { code: string; message: string };
    expect(body.code).toBe('PILOTLIGHT_SPAWN_FAILED');
    expect(body.message).toContain('ENOENT');
    // A second request gets the same answer: the failure is per request, the watchdog is fine.
    const again = await fetch(`${watchdog.url}/`);
    expect(again.status).toBe(500);
    expect(again.headers.get('x-pilotlight-error')).toBe('PILOTLIGHT_SPAWN_FAILED');
    expect((await fetch(`${watchdog.url}/_/health`)).status).toBe(200);
  });

  it('answers 413 to a declared Content-Length over PILOTLIGHT_MAX_BODY_SIZE', async () => {
    const watchdog = await serializing('cat', { PILOTLIGHT_MAX_BODY_SIZE: '1KiB' });
    const res = await fetch(`${watchdog.url}/`, { method: 'POST', body: 'x'.repeat(2048) });
    expect(res.status).toBe(413);
    expect(res.headers.get('x-pilotlight-error')).toBe('PILOTLIGHT_BODY_TOO_LARGE');
    expect(((await res.json()) as { code: string }).code).toBe('PILOTLIGHT_BODY_TOO_LARGE');
  });

  it('answers 413 to a chunked body once it passes PILOTLIGHT_MAX_BODY_SIZE', async () => {
    const watchdog = await serializing('cat', { PILOTLIGHT_MAX_BODY_SIZE: '1KiB' });
    // No Content-Length: node:http sends this chunked, and the body never ends, so only counting
    // the bytes as they stream can catch it.
    const res = await rawRequest(watchdog.url, {
      method: 'POST',
      path: '/',
      chunks: [Buffer.alloc(600, 'a'), Buffer.alloc(600, 'b')],
      keepOpen: true,
    });
    expect(res.status).toBe(413);
    expect(res.headers['transfer-encoding']).toBeUndefined();
    expect(res.headers['x-pilotlight-error']).toBe('PILOTLIGHT_BODY_TOO_LARGE');
    expect(JSON.parse(res.body.toString()).code).toBe('PILOTLIGHT_BODY_TOO_LARGE');
  });

  it('accepts a chunked body under the limit (fetch with a stream body)', async () => {
    const watchdog = await serializing('cat', { PILOTLIGHT_MAX_BODY_SIZE: '1KiB' });
    const parts = ['chunked ', 'body ', 'under the limit'];
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = parts.shift();
        if (next === undefined) controller.close();
        else controller.enqueue(new TextEncoder().encode(next));
      },
    });
    const res = await fetch(`${watchdog.url}/`, { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('chunked body under the limit');
  });

  it('answers a chunked body over the limit with 413 (fetch with a stream body)', async () => {
    const watchdog = await serializing('cat', { PILOTLIGHT_MAX_BODY_SIZE: '1KiB' });
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        // Stop after 8 KiB so the upload ends on its own whether or not the server reads it.
        if (sent >= 8 * 1024) return controller.close();
        sent += 512;
        controller.enqueue(new Uint8Array(512).fill(120));
      },
    });
    const res = await fetch(`${watchdog.url}/`, { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { code: string }).code).toBe('PILOTLIGHT_BODY_TOO_LARGE');
  });
});

describe.each(['serializing', 'streaming'])('%s mode: a process that does not read its body', (mode) => {
  it('answers, and the client can finish sending the body (the rest is read and dropped)', async () => {
    const watchdog = await startWatchdog({ env: { PILOTLIGHT_MODE: mode, PILOTLIGHT_PROCESS: 'echo ignored' } });
    // Far more than the socket buffers hold: unread, the upload could never complete.
    const body = Buffer.alloc(8 * 1024 * 1024, 7);
    for (const headers of [{ 'content-length': String(body.length) }, { 'transfer-encoding': 'chunked' }]) {
      const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = request(`${watchdog.url}/`, { method: 'POST', headers, signal: AbortSignal.timeout(10_000) });
        const sent = new Promise((r) => req.once('finish', r));
        req.on('response', (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => void sent.then(() => resolve({ status: res.statusCode ?? 0, text })));
        });
        req.on('error', reject);
        req.end(body);
      });
      expect(answer).toEqual({ status: 200, text: 'ignored\n' });
    }
  });
});

describe.each(['serializing', 'streaming'])('%s mode: a function that leaves a daemon holding its stdout', (mode) => {
  it('is answered when the function exits, and its slot is free for the next request', async () => {
    const marker = uniqueMarker();
    try {
      const watchdog = await startWatchdog({
        env: { PILOTLIGHT_MODE: mode, PILOTLIGHT_PROCESS: `${fixture('fork-daemon.sh')} ${marker}`, PILOTLIGHT_MAX_INFLIGHT: '1', PILOTLIGHT_EXEC_TIMEOUT: '20s', PILOTLIGHT_WRITE_TIMEOUT: '20s' },
      });
      for (let i = 0; i < 2; i++) {
        const res = await fetch(`${watchdog.url}/`, { signal: AbortSignal.timeout(10_000) });
        expect(res.status).toBe(200);
        expect(await res.text()).toBe('answered\n');
      }
      const held = await watchdog.waitForLog((r) => r.code === 'PILOTLIGHT_OUTPUT_HELD');
      expect(held).toMatchObject({ level: 'warn' });
    } finally {
      killMarked(marker);
    }
  });
});
