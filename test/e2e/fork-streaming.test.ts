import { createHash, randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fixture, tempDir } from '../support/fork-helpers.js';
import { killAll, startWatchdog } from '../support/watchdog.js';

const temps: Array<() => void> = [];
afterEach(async () => {
  await killAll();
  for (const remove of temps.splice(0)) remove();
});

function streaming(process: string, env: Record<string, string> = {}) {
  return startWatchdog({ env: { PILOTLIGHT_MODE: 'streaming', PILOTLIGHT_PROCESS: process, ...env } });
}

function waitFile(): string {
  const dir = tempDir();
  temps.push(dir.remove);
  return join(dir.path, 'go');
}

/** Reads from `reader` until `text` has arrived in full, returning everything read. */
async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, text: string): Promise<string> {
  const decoder = new TextDecoder();
  let seen = '';
  while (!seen.includes(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += decoder.decode(value, { stream: true });
  }
  return seen;
}

/**
 * Streams `size` random bytes up through node:http while reading the response at the same time
 * (a client that uploaded everything before reading would deadlock against `cat`'s backpressure),
 * and returns the sha256 of what went up and of what came back.
 */
function pumpThrough(url: string, size: number): Promise<{ status: number; sent: string; received: string; receivedBytes: number }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sentHash = createHash('sha256');
    const receivedHash = createHash('sha256');
    let receivedBytes = 0;
    const req = request({ hostname, port, method: 'POST', path: '/' });
    req.on('error', reject);
    req.once('response', (res) => {
      res.on('data', (chunk: Buffer) => {
        receivedBytes += chunk.length;
        receivedHash.update(chunk);
      });
      res.once('error', reject);
      res.once('end', () =>
        resolve({ status: res.statusCode ?? 0, sent: sentHash.digest('hex'), received: receivedHash.digest('hex'), receivedBytes }),
      );
    });
    let remaining = size;
    const write = () => {
      while (remaining > 0) {
        const chunk = randomBytes(Math.min(remaining, 256 * 1024));
        remaining -= chunk.length;
        sentHash.update(chunk);
        if (!req.write(chunk)) return void req.once('drain', write);
      }
      req.end();
    };
    write();
  });
}

describe('streaming mode', () => {
  it('streams output to the client while the process is still running', async () => {
    const watchdog = await streaming(fixture('fork-stream-wait.sh'), { PILOTLIGHT_CONTENT_TYPE: 'text/plain' });
    const go = waitFile();
    const res = await fetch(`${watchdog.url}/`, { headers: { 'x-wait-file': go } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain');
    const reader = res.body!.getReader();
    // The process cannot print "second" (nor exit) before the file exists, and the file is only
    // created after "first" has reached us: the ordering is the proof.
    expect(await readUntil(reader, 'first\n')).toBe('first\n');
    expect(existsSync(go)).toBe(false);
    writeFileSync(go, '');
    let rest = '';
    const decoder = new TextDecoder();
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += decoder.decode(r.value, { stream: true });
    expect(rest).toBe('second\n');
  });

  it('uses application/octet-stream by default', async () => {
    const watchdog = await streaming('cat');
    const res = await fetch(`${watchdog.url}/`, { method: 'POST', body: 'abc' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(await res.text()).toBe('abc');
  });

  it('answers 200 with an empty body for a process that writes nothing and succeeds', async () => {
    const watchdog = await streaming('true');
    const res = await fetch(`${watchdog.url}/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });

  it('passes a 50 MB body through cat byte for byte', async () => {
    const watchdog = await streaming('cat');
    const size = 50 * 1024 * 1024;
    const result = await pumpThrough(watchdog.url, size);
    expect(result.status).toBe(200);
    expect(result.receivedBytes).toBe(size);
    expect(result.received).toBe(result.sent);
  });

  it('answers 500 JSON when the process fails before writing anything', async () => {
    const watchdog = await streaming(fixture('fork-fail.sh'));
    const res = await fetch(`${watchdog.url}/`, { method: 'POST', body: 'x' });
    expect(res.status).toBe(500);
    expect(res.headers.get('x-pilotlight-error')).toBe('PILOTLIGHT_FUNCTION_FAILED');
    const body = (await res.json()) as { code: string; message: string };
    expect(body.code).toBe('PILOTLIGHT_FUNCTION_FAILED');
    expect(body.message).toContain('exited with code 3');
  });

  it('answers 500 PILOTLIGHT_SPAWN_FAILED for a command that does not exist', async () => {
    const watchdog = await streaming('/nonexistent/pilotlight-no-such-command');
    const res = await fetch(`${watchdog.url}/`);
    expect(res.status).toBe(500);
    expect(((await res.json()) as { code: string }).code).toBe('PILOTLIGHT_SPAWN_FAILED');
  });

  it('cuts the response when the process fails after writing', async () => {
    const watchdog = await streaming(fixture('fork-stream-wait.sh'));
    const go = waitFile();
    const res = await fetch(`${watchdog.url}/`, { headers: { 'x-wait-file': go, 'x-exit-code': '1' } });
    // The status went out with the first byte, before the failure was known.
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    expect(await readUntil(reader, 'first\n')).toBe('first\n');
    writeFileSync(go, '');
    // No clean end of body: the client sees an error, so it cannot mistake this for success.
    await expect(
      (async () => {
        while (!(await reader.read()).done);
      })(),
    ).rejects.toThrow();
  });

  it('keeps serving after a cut response', async () => {
    const watchdog = await streaming(fixture('fork-stream-wait.sh'));
    const go = waitFile();
    writeFileSync(go, '');
    const cut = await fetch(`${watchdog.url}/`, { headers: { 'x-wait-file': go, 'x-exit-code': '1' } });
    await cut.text().catch(() => undefined);
    const ok = await fetch(`${watchdog.url}/`, { headers: { 'x-wait-file': go } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('first\nsecond\n');
  });
});
