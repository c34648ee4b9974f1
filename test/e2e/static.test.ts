import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest, tempDir } from '../support/fork-helpers.js';
import { killAll, type RunningWatchdog, startWatchdog } from '../support/watchdog.js';

const SECRET = 'outside the root: must never be served';
const INDEX = '<!doctype html><h1>index</h1>\n';
const DATA = '0123456789abcdefghij';

let dir: ReturnType<typeof tempDir>;
let root: string;
let watchdog: RunningWatchdog;

// One watchdog for the read-only checks: a tree with a secret next to (not inside) the root.
beforeAll(async () => {
  dir = tempDir();
  root = join(dir.path, 'public');
  mkdirSync(join(root, 'sub'), { recursive: true });
  writeFileSync(join(dir.path, 'secret.txt'), SECRET);
  writeFileSync(join(root, 'index.html'), INDEX);
  writeFileSync(join(root, 'data.txt'), DATA);
  writeFileSync(join(root, 'app.json'), '{"ok":true}');
  writeFileSync(join(root, 'sub', 'style.css'), 'body { color: red }');
  writeFileSync(join(root, '.env'), 'TOKEN=hidden');
  mkdirSync(join(dir.path, 'shared'));
  writeFileSync(join(dir.path, 'shared', 'logo.txt'), 'shared logo');
  symlinkSync(join(dir.path, 'shared'), join(root, 'shared'));
  // A named pipe nobody writes to: opening it would wait for a writer forever.
  execFileSync('mkfifo', [join(root, 'pipe')]);
  watchdog = await startWatchdog({ env: { PILOTLIGHT_MODE: 'static', PILOTLIGHT_STATIC_PATH: root } });
});

afterAll(async () => {
  await killAll();
  dir.remove();
});

describe('static mode', () => {
  it('serves index.html for /', async () => {
    const res = await fetch(`${watchdog.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await res.text()).toBe(INDEX);
  });

  it('answers 404 for what is not a regular file, and keeps serving files', async () => {
    // More requests than libuv has threads: had each opened the pipe, none would be left.
    const answers = await Promise.all(Array.from({ length: 6 }, () => fetch(`${watchdog.url}/pipe`, { signal: AbortSignal.timeout(5_000) })));
    expect(answers.map((res) => res.status)).toEqual(Array(6).fill(404));
    expect(answers[0]?.headers.get('x-pilotlight-error')).toBe('PILOTLIGHT_NOT_FOUND');
    const data = await fetch(`${watchdog.url}/data.txt`, { signal: AbortSignal.timeout(5_000) });
    expect(await data.text()).toBe(DATA);
  });

  it('serves files with their content type', async () => {
    const css = await fetch(`${watchdog.url}/sub/style.css`);
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    expect(await css.text()).toBe('body { color: red }');
    const json = await fetch(`${watchdog.url}/app.json`);
    expect(json.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await json.json()).toEqual({ ok: true });
    const text = await fetch(`${watchdog.url}/data.txt?cache=bust`);
    expect(text.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await text.text()).toBe(DATA);
  });

  it('reads a path starting with // as a path, not as a host name', async () => {
    const res = await rawRequest(watchdog.url, { path: '//sub/style.css' });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('body { color: red }');
  });

  it('follows a symbolic link the author put inside the root (as nginx and of-watchdog do)', async () => {
    const res = await fetch(`${watchdog.url}/shared/logo.txt`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('shared logo');
  });

  it('answers HEAD without a body', async () => {
    const res = await fetch(`${watchdog.url}/data.txt`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(DATA.length));
    expect(await res.text()).toBe('');
  });

  it('answers a missing file with 404 PILOTLIGHT_NOT_FOUND', async () => {
    const res = await fetch(`${watchdog.url}/missing.txt`);
    expect(res.status).toBe(404);
    expect(res.headers.get('x-pilotlight-error')).toBe('PILOTLIGHT_NOT_FOUND');
    expect(((await res.json()) as { code: string }).code).toBe('PILOTLIGHT_NOT_FOUND');
  });

  it('does not serve dotfiles', async () => {
    const res = await fetch(`${watchdog.url}/.env`);
    expect(res.status).toBe(404);
    expect(await res.text()).not.toContain('hidden');
  });

  // node:http sends these paths byte for byte; fetch would normalise the dots away first.
  it.each([
    '/../secret.txt',
    '/sub/../../secret.txt',
    '/%2e%2e/secret.txt',
    '/%2E%2E/%2e%2e/secret.txt',
    '/..%2fsecret.txt',
    '/..%2Fsecret.txt',
    '/%2e%2e%2fsecret.txt',
    '/sub/..%2f..%2fsecret.txt',
    '/..%5csecret.txt',
    '/%252e%252e/secret.txt',
  ])('does not escape the root for %s', async (path) => {
    const res = await rawRequest(watchdog.url, { path });
    expect(res.body.toString()).not.toContain(SECRET);
    // Not found, the same as any other path that names no file under the root: neither a
    // success nor a 5xx that would blame the watchdog for a client's bad request.
    expect(res.status).toBe(404);
    expect(res.headers['x-pilotlight-error']).toBe('PILOTLIGHT_NOT_FOUND');
  });

  it('answers a malformed path with 404, not a watchdog failure', async () => {
    for (const path of ['/%zz', '/index.html%00']) {
      const res = await rawRequest(watchdog.url, { path });
      expect(res.status, path).toBe(404);
      expect(JSON.parse(res.body.toString()).code).toBe('PILOTLIGHT_NOT_FOUND');
    }
  });

  it('answers POST with 405 and Allow', async () => {
    const res = await fetch(`${watchdog.url}/data.txt`, { method: 'POST', body: 'x' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
    expect(res.headers.get('x-pilotlight-error')).toBe('PILOTLIGHT_METHOD_NOT_ALLOWED');
    expect(((await res.json()) as { code: string }).code).toBe('PILOTLIGHT_METHOD_NOT_ALLOWED');
  });

  it('serves byte ranges', async () => {
    const res = await fetch(`${watchdog.url}/data.txt`, { headers: { range: 'bytes=2-5' } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes 2-5/${DATA.length}`);
    expect(await res.text()).toBe('2345');
    const suffix = await fetch(`${watchdog.url}/data.txt`, { headers: { range: 'bytes=-3' } });
    expect(suffix.status).toBe(206);
    expect(await suffix.text()).toBe('hij');
  });

  it('answers an unsatisfiable range with 416 and the real length', async () => {
    const res = await fetch(`${watchdog.url}/data.txt`, { headers: { range: 'bytes=500-600' } });
    expect(res.status).toBe(416);
    expect(res.headers.get('content-range')).toBe(`bytes */${DATA.length}`);
    expect(res.headers.get('x-pilotlight-error')).toBeNull();
  });

  // node:http here because fetch turns a request with If-None-Match into a no-cache one.
  it('answers conditional requests: 304 for a matching ETag, 412 for a failed If-Match', async () => {
    const first = await rawRequest(watchdog.url, { path: '/data.txt' });
    const etag = first.headers.etag;
    expect(etag).toBeTruthy();
    const cached = await rawRequest(watchdog.url, { path: '/data.txt', headers: { 'if-none-match': etag! } });
    expect(cached.status).toBe(304);
    expect(cached.body.length).toBe(0);
    const failed = await rawRequest(watchdog.url, { path: '/data.txt', headers: { 'if-match': '"not-the-etag"' } });
    expect(failed.status).toBe(412);
    expect(failed.headers['x-pilotlight-error']).toBeUndefined();
    expect(failed.body.toString()).not.toContain(DATA);
  });
});

describe('static mode start-up', () => {
  afterEach(killAll);

  it('exits 1 with PILOTLIGHT_START_FAILED when the directory does not exist', async () => {
    const missing = join(dir.path, 'no-such-dir');
    const failing = await startWatchdog({ env: { PILOTLIGHT_MODE: 'static', PILOTLIGHT_STATIC_PATH: missing }, waitFor: 'nothing' });
    const { code } = await failing.exited;
    expect(code).toBe(1);
    const fatal = failing.logs.find((r) => r.level === 'fatal');
    expect(fatal).toMatchObject({ code: 'PILOTLIGHT_START_FAILED' });
    expect(fatal?.msg).toContain(missing);
    expect(failing.rawLines).toEqual([]);
  });

  it('exits 1 with PILOTLIGHT_START_FAILED when the path is a file', async () => {
    const failing = await startWatchdog({
      env: { PILOTLIGHT_MODE: 'static', PILOTLIGHT_STATIC_PATH: join(root, 'data.txt') },
      waitFor: 'nothing',
    });
    expect((await failing.exited).code).toBe(1);
    expect(failing.logs.find((r) => r.level === 'fatal')).toMatchObject({ code: 'PILOTLIGHT_START_FAILED' });
  });
});
