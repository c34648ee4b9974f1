import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CodeServer, entriesOf, makeArchive, sha256, startCodeServer } from '../support/archives.js';
import {
  callFunction,
  expectError,
  expectGeneric,
  expectHelloWorld,
  expectSpecialized,
  FUNCTIONS,
  HELLO_TS,
  probe,
  specialize,
  status,
} from '../support/specialize.js';
import { send } from '../support/http-helpers.js';
import { killAll, type RunningWatchdog, startWatchdog } from '../support/watchdog.js';

/** A generic instance: the node runtime pre-started, no function yet. */
async function startGeneric(env: Record<string, string> = {}): Promise<RunningWatchdog> {
  const watchdog = await startWatchdog({ env: { PILOTLIGHT_RUNTIME: 'node', ...env }, waitFor: 'listening' });
  await watchdog.waitForState('generic');
  return watchdog;
}

/** Instances a test took; each is stopped after its test. */
const inUse = new Set<RunningWatchdog>();
function used(watchdog: RunningWatchdog): RunningWatchdog {
  inUse.add(watchdog);
  return watchdog;
}

/**
 * The next default generic instance is started while the current test runs (what a platform's
 * pre-warm pool does), so tests do not each wait for a runtime to start.
 */
let warm: Promise<RunningWatchdog> | undefined;
async function takeGeneric(env?: Record<string, string>): Promise<RunningWatchdog> {
  if (env !== undefined) return used(await startGeneric(env));
  const taken = warm ?? startGeneric();
  warm = startGeneric();
  // A failed start surfaces in the test that takes it.
  warm.catch(() => {});
  return used(await taken);
}

/** hello-ts as a code package: its package.json (whose `main` is dist/index.js) and the build. */
const helloArchive = (format: 'tar.gz' | 'zip') =>
  makeArchive(format, entriesOf(HELLO_TS, (name) => name === 'package.json' || name.startsWith('dist/')));

const HEX = 'ab'.repeat(32);

let codeServer: CodeServer;
beforeAll(async () => {
  codeServer = await startCodeServer();
});
afterEach(async () => {
  await Promise.all([...inUse].map((watchdog) => watchdog.kill()));
  inUse.clear();
});
afterAll(async () => {
  // The spare instance may still be starting (not yet known to killAll): wait for it, then stop it.
  await warm?.then((watchdog) => watchdog.kill(), () => {});
  await killAll();
  await codeServer?.close();
});

describe('a generic instance specializes from each source and serves', () => {
  it('{"path"}: hello-ts loaded late answers hello world; status and readiness follow', async () => {
    const watchdog = await takeGeneric();
    const before = await status(watchdog);
    expect(before).toMatchObject({ state: 'generic', mode: 'http', runtime: 'node', function: null, specializeMs: null });
    expect(await probe(watchdog, 'ready')).toBe(503);
    expect(await probe(watchdog, 'health')).toBe(200);
    // No function yet: a request to it is refused by the watchdog, not served.
    const early = await callFunction(watchdog);
    expect(early.status).toBe(503);
    expect(early.headers.get('x-pilotlight-error')).toBeTruthy();

    const answer = await specialize(watchdog, { path: HELLO_TS, function: 'hello-ts' });
    expectSpecialized(answer);
    expect(answer.body.specializeMs as number).toBeGreaterThanOrEqual(0);
    await expectHelloWorld(watchdog);

    const after = await status(watchdog);
    expect(after).toMatchObject({ state: 'ready', runtime: 'node', function: 'hello-ts' });
    expect(typeof after.specializeMs).toBe('number');
    expect(await probe(watchdog, 'ready')).toBe(200);
    await watchdog.waitForLog((r) => r.msg === 'specialized');
  });

  it('names the function in every watchdog log line after a specialization gives it a name, and in none before', async () => {
    const watchdog = await takeGeneric({ PILOTLIGHT_ACCESS_LOG: 'true' });
    expectSpecialized(await specialize(watchdog, { path: HELLO_TS, function: 'named-late' }));
    await expectHelloWorld(watchdog);
    const access = await watchdog.waitForLog((r) => r.msg === 'request');
    expect(access.function).toBe('named-late');
    // The watchdog's own warm-up requests, made while the instance was generic, are not logged.
    expect(watchdog.logs.filter((r) => r.msg === 'request')).toHaveLength(1);
    const generic = watchdog.logs.find((r) => r.msg === 'instance is generic');
    expect(generic).toBeDefined();
    expect(generic).not.toHaveProperty('function');
  });

  it.each(['tar.gz', 'zip'] as const)('{"archive", "format": "%s"}: hello-ts from the request body', async (format) => {
    const watchdog = await takeGeneric();
    const answer = await specialize(watchdog, { archive: helloArchive(format).toString('base64'), format, function: `hello-${format}` });
    expectSpecialized(answer);
    await expectHelloWorld(watchdog);
    expect(await status(watchdog)).toMatchObject({ state: 'ready', function: `hello-${format}` });
    expect(await probe(watchdog, 'ready')).toBe(200);
  });

  it('{"url", "sha256"}: hello-ts fetched from an HTTP server and verified', async () => {
    const archive = helloArchive('tar.gz');
    codeServer.serve('/code.tar.gz', archive);
    const watchdog = await takeGeneric();
    const answer = await specialize(watchdog, { url: `${codeServer.url}/code.tar.gz`, sha256: sha256(archive), function: 'hello-url' });
    expectSpecialized(answer);
    expect(codeServer.requests).toContain('/code.tar.gz');
    await expectHelloWorld(watchdog);
    expect(await status(watchdog)).toMatchObject({ state: 'ready', function: 'hello-url' });
    expect(await probe(watchdog, 'ready')).toBe(200);
  });

  it('{"url"} of a zip, the format told by the file name', async () => {
    const archive = helloArchive('zip');
    codeServer.serve('/code.zip', archive);
    const watchdog = await takeGeneric();
    expectSpecialized(await specialize(watchdog, { url: `${codeServer.url}/code.zip`, sha256: sha256(archive).toUpperCase() }));
    await expectHelloWorld(watchdog);
  });
});

describe('functions of every module shape load', () => {
  it('an ESM (.mjs) controller, with the env given at specialization', async () => {
    const watchdog = await takeGeneric();
    const answer = await specialize(watchdog, { path: join(FUNCTIONS, 'esm-controller'), function: 'esm', env: { GREETING_SUFFIX: '!' } });
    expectSpecialized(answer);
    expect(answer.body.routes).toEqual(['POST /']);
    const reply = await callFunction(watchdog);
    expect(reply).toMatchObject({ status: 200, text: 'esm hello world !' });
  });

  it('a CommonJS (.cjs) controller', async () => {
    const watchdog = await takeGeneric();
    const answer = await specialize(watchdog, { path: join(FUNCTIONS, 'cjs-controller'), function: 'cjs' });
    expectSpecialized(answer);
    expect(await callFunction(watchdog)).toMatchObject({ status: 200, text: 'cjs hello world' });
  });

  it('a plain default-exported handler (request, context) found through package.json main', async () => {
    const watchdog = await takeGeneric();
    expectSpecialized(await specialize(watchdog, { path: join(FUNCTIONS, 'plain-handler'), function: 'plain-fn' }));
    const reply = await callFunction(watchdog);
    expect(reply).toMatchObject({ status: 200, text: 'plain hello world from plain-fn' });
    expect(reply.headers.get('x-plain')).toBe('yes');
    expect(await status(watchdog)).toMatchObject({ state: 'ready', function: 'plain-fn' });
  });

  it('a plain handler returning what fetch gave it: the decoded body goes out whole, without the encoded headers', async () => {
    const text = 'compressible '.repeat(400);
    const gzipped = gzipSync(text);
    const origin = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip', 'content-length': gzipped.length, connection: 'keep-alive' });
      res.end(gzipped);
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    try {
      const watchdog = await takeGeneric();
      expectSpecialized(await specialize(watchdog, { path: join(FUNCTIONS, 'plain-handler'), function: 'proxy-fn' }));
      const target = `http://127.0.0.1:${(origin.address() as AddressInfo).port}/`;
      // Twice, so a body longer than its stated length would have left garbage on the watchdog's connection.
      for (let i = 0; i < 2; i++) {
        const res = await send(`${watchdog.url}/`, { headers: { 'x-fetch': target } });
        expect(res.status).toBe(200);
        expect(res.headers['content-encoding']).toBeUndefined();
        expect(res.body.toString()).toBe(text);
      }
    } finally {
      origin.close();
    }
  });
});

describe('an instance given its function at start', () => {
  it('--runtime node --function DIR: ready without specialization; specialize then answers 409', async () => {
    const watchdog = used(await startWatchdog({ args: ['--runtime', 'node', '--function', HELLO_TS, '--function-name', 'hello-at-start'] }));
    await expectHelloWorld(watchdog);
    expect(await status(watchdog)).toMatchObject({ state: 'ready', runtime: 'node', function: 'hello-at-start' });
    expect(await probe(watchdog, 'ready')).toBe(200);
    // It went starting → ready: never generic, never specializing.
    const states = watchdog.logs.filter((r) => typeof r.state === 'string').map((r) => r.state);
    expect(states).not.toContain('generic');
    expect(states).not.toContain('specializing');
    expect(watchdog.logs.some((r) => r.msg === 'runtime is up')).toBe(true);

    const answer = await specialize(watchdog, { path: join(FUNCTIONS, 'esm-controller') });
    expectError(answer, 409, 'PILOTLIGHT_NOT_GENERIC');
    await expectHelloWorld(watchdog);
  });

  it('exits 1 with PILOTLIGHT_START_FAILED naming the setting when the directory does not exist, starting no runtime', async () => {
    const missing = join(FUNCTIONS, 'no-such-function');
    const tmp = mkdtempSync(join(tmpdir(), 'pilotlight-test-tmp-'));
    const failing = await startWatchdog({ args: ['--runtime', 'node', '--function', missing], env: { TMPDIR: tmp }, waitFor: 'nothing' });
    expect((await failing.exited).code).toBe(1);
    // The runtime's socket directory, made for the start, went with it.
    expect(readdirSync(tmp)).toEqual([]);
    rmSync(tmp, { recursive: true });
    const fatal = failing.logs.find((r) => r.level === 'fatal');
    expect(fatal).toMatchObject({ code: 'PILOTLIGHT_START_FAILED' });
    expect(fatal?.msg).toContain(missing);
    expect(fatal?.msg).toContain('PILOTLIGHT_FUNCTION_DIR (--function)');
    expect(failing.logs.filter((r) => r.msg === 'function process started')).toEqual([]);
  });

  it('a function that exits at import leaves the instance failed, without restarting the runtime to fail again', async () => {
    const watchdog = used(await startWatchdog({ env: { PILOTLIGHT_RUNTIME: 'node', PILOTLIGHT_FUNCTION_DIR: join(FUNCTIONS, 'exits-at-import') }, waitFor: 'listening' }));
    await watchdog.waitForState('failed');
    expect(await probe(watchdog, 'health')).toBe(503);
    // Time for a restart to have come and failed, had there been one (the first backoff is 100 ms).
    await new Promise((r) => setTimeout(r, 1_000));
    expect(watchdog.logs.filter((r) => r.msg === 'function process started')).toHaveLength(1);
    expect((await status(watchdog)).state).toBe('failed');
  });

  it('PILOTLIGHT_FUNCTION_DIR: the same, set by environment', async () => {
    const watchdog = used(
      await startWatchdog({
        env: { PILOTLIGHT_RUNTIME: 'node', PILOTLIGHT_FUNCTION_DIR: join(FUNCTIONS, 'plain-handler'), PILOTLIGHT_FUNCTION_NAME: 'plain-env' },
      }),
    );
    expect(await callFunction(watchdog)).toMatchObject({ status: 200, text: 'plain hello world from plain-env' });
    expect((await status(watchdog)).state).toBe('ready');
    expectError(await specialize(watchdog, { path: HELLO_TS }), 409, 'PILOTLIGHT_NOT_GENERIC');
  });
});

describe('entrypoint forms', () => {
  const ENTRY_FORMS = join(FUNCTIONS, 'entry-forms');

  it('file.export picks a named export', async () => {
    const watchdog = await takeGeneric();
    expectSpecialized(await specialize(watchdog, { path: ENTRY_FORMS, entrypoint: 'handler.main' }));
    expect(await callFunction(watchdog)).toMatchObject({ status: 200, text: 'main answered world' });
  });

  it('a file whose name starts with ".." is inside the function, not outside it', async () => {
    const watchdog = await takeGeneric();
    expectSpecialized(await specialize(watchdog, { path: ENTRY_FORMS, entrypoint: '..dots.mjs' }));
    expect(await callFunction(watchdog)).toMatchObject({ status: 200, text: 'dots answered world' });
  });

  it('a file by the very name given is that file: index.ts is refused as TypeScript, not looked up as "index"', async () => {
    const watchdog = await takeGeneric();
    const answer = await specialize(watchdog, { path: ENTRY_FORMS, entrypoint: 'index.ts' });
    expectError(answer, 422, 'PILOTLIGHT_LOAD_FAILED');
    expect(answer.body.message).toMatch(/index\.ts threw: Unknown file extension "\.ts"/);
    const outside = await specialize(watchdog, { path: ENTRY_FORMS, entrypoint: '../plain-handler/handler.js' });
    expectError(outside, 422, 'PILOTLIGHT_LOAD_FAILED');
    expect(outside.body).toMatchObject({ reason: 'PILOTLIGHT_NO_ENTRYPOINT' });
    expect(outside.body.message).toMatch(/is outside/);
  });
});

describe('a specialize request cut off before its body ends', () => {
  it('is logged as the client\'s doing (PILOTLIGHT_BAD_SPECIALIZE), not as a watchdog bug; the instance stays generic', async () => {
    const watchdog = await takeGeneric();
    await new Promise<void>((resolve, reject) => {
      const socket = connect(watchdog.port, '127.0.0.1', () => {
        socket.end(`POST /_/specialize HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"path":`);
      });
      socket.on('error', reject);
      socket.on('close', () => resolve());
      socket.resume();
    });
    const refused = await watchdog.waitForLog((r) => String(r.msg).startsWith('specialization refused'));
    expect(refused).toMatchObject({ level: 'warn', code: 'PILOTLIGHT_BAD_SPECIALIZE' });
    expect(watchdog.logs.filter((r) => r.code === 'PILOTLIGHT_INTERNAL')).toEqual([]);
    await expectGeneric(watchdog);
  });
});

describe('only the platform may specialize', () => {
  it('401 without the admin token or with a wrong one; 200 with the right one', async () => {
    const watchdog = await takeGeneric({ PILOTLIGHT_ADMIN_TOKEN: 's3cret-token' });
    const body = { path: HELLO_TS, function: 'hello-auth' };

    const missing = await specialize(watchdog, body);
    expectError(missing, 401, 'PILOTLIGHT_UNAUTHORIZED');
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
    await expectGeneric(watchdog);

    const wrong = await specialize(watchdog, body, { authorization: 'Bearer wrong-token!', 'x-request-id': 'platform-call-7' });
    expectError(wrong, 401, 'PILOTLIGHT_UNAUTHORIZED');
    // The platform's request id comes back in the error and goes into the log line.
    expect(wrong.body.requestId).toBe('platform-call-7');
    await watchdog.waitForLog((r) => r.code === 'PILOTLIGHT_UNAUTHORIZED' && r.request_id === 'platform-call-7');
    expectError(await specialize(watchdog, body, { authorization: 's3cret-token' }), 401, 'PILOTLIGHT_UNAUTHORIZED');
    // The token is checked before the body is even read.
    expectError(await specialize(watchdog, 'not json at all'), 401, 'PILOTLIGHT_UNAUTHORIZED');
    await expectGeneric(watchdog);

    // The scheme is case-insensitive (RFC 9110); the token is not.
    expectError(await specialize(watchdog, body, { authorization: 'bearer S3CRET-TOKEN' }), 401, 'PILOTLIGHT_UNAUTHORIZED');
    expectSpecialized(await specialize(watchdog, body, { authorization: 'bearer s3cret-token' }));
    await expectHelloWorld(watchdog);
    expect((await status(watchdog)).function).toBe('hello-auth');
  });
});

describe('an instance is specialized at most once', () => {
  it('409 for a second specialization after a success, and for one racing another', async () => {
    const watchdog = await takeGeneric();
    // Two at once: exactly one wins.
    const [a, b] = await Promise.all([
      specialize(watchdog, { path: HELLO_TS, function: 'first' }),
      specialize(watchdog, { path: HELLO_TS, function: 'first' }),
    ]);
    const [won, lost] = a.status === 200 ? [a, b] : [b, a];
    expectSpecialized(won);
    expect(lost.status, lost.text).toBe(409);
    expect(['PILOTLIGHT_SPECIALIZING', 'PILOTLIGHT_NOT_GENERIC']).toContain(lost.body.code);

    const again = await specialize(watchdog, { path: join(FUNCTIONS, 'esm-controller'), function: 'second' });
    expectError(again, 409, 'PILOTLIGHT_NOT_GENERIC');
    // The first function still serves, under its name.
    await expectHelloWorld(watchdog);
    expect(await status(watchdog)).toMatchObject({ state: 'ready', function: 'first' });
  });
});

describe('code that fails to load', () => {
  it("422 with the runtime's reason, message and stack; the same instance then specializes fine", async () => {
    const watchdog = await takeGeneric();

    const threw = await specialize(watchdog, { path: join(FUNCTIONS, 'throws-at-import') });
    expectError(threw, 422, 'PILOTLIGHT_LOAD_FAILED');
    expect(threw.body.reason).toBe('PILOTLIGHT_LOAD_FAILED');
    expect(threw.body.message).toContain('fixture exploded at import');
    expect(threw.body.stack).toEqual(expect.stringContaining('fixture exploded at import'));
    expect(threw.body.stack).toEqual(expect.stringContaining('throws-at-import/index.mjs'));
    await expectGeneric(watchdog, { healthy: false });

    const shapeless = await specialize(watchdog, { path: join(FUNCTIONS, 'no-handler') });
    expectError(shapeless, 422, 'PILOTLIGHT_LOAD_FAILED');
    expect(shapeless.body.reason).toBe('PILOTLIGHT_NO_HANDLER');
    expect(shapeless.body.message).toContain('no-handler');
    await expectGeneric(watchdog, { healthy: false });

    const missing = await specialize(watchdog, { path: join(FUNCTIONS, 'does-not-exist') });
    expectError(missing, 422, 'PILOTLIGHT_LOAD_FAILED');
    expect(typeof missing.body.reason).toBe('string');
    expect(missing.body.message).toContain('does-not-exist');
    await expectGeneric(watchdog, { healthy: false });

    // Nothing of the failed loads lingers: the good function loads and serves.
    expectSpecialized(await specialize(watchdog, { path: HELLO_TS, function: 'after-422' }));
    await expectHelloWorld(watchdog);
    expect(await status(watchdog)).toMatchObject({ state: 'ready', function: 'after-422' });
  });
});

describe('a load past PILOTLIGHT_SPECIALIZE_TIMEOUT', () => {
  it('504, the runtime replaced by a clean one, the instance generic and specializable again', async () => {
    const watchdog = await takeGeneric({ PILOTLIGHT_SPECIALIZE_TIMEOUT: '1s' });
    const started = (r: Record<string, unknown>) => r.msg === 'function process started';
    const answering = (r: Record<string, unknown>) => r.msg === 'function process is answering';
    const firstPid = (await watchdog.waitForLog(started)).pid as number;

    // A top-level await that never settles.
    const hung = await specialize(watchdog, { path: join(FUNCTIONS, 'hangs-at-import') });
    expectError(hung, 504, 'PILOTLIGHT_SPECIALIZE_TIMEOUT');
    await expectGeneric(watchdog, { healthy: false });
    const secondPid = (await watchdog.waitForLog((r) => started(r) && r.pid !== firstPid)).pid as number;
    // The old runtime, with its half-imported module, is gone.
    expect(() => process.kill(firstPid, 0)).toThrow();
    // Only once the new runtime is up does the next load reach it: on a loaded machine its
    // start can outlast the 1 s timeout, which would be a different 504.
    await watchdog.waitForLog((r) => answering(r) && r.pid === secondPid);

    // A top-level busy loop: the runtime's event loop itself is stuck.
    const blocked = await specialize(watchdog, { path: join(FUNCTIONS, 'blocks-at-import') });
    expectError(blocked, 504, 'PILOTLIGHT_SPECIALIZE_TIMEOUT');
    await expectGeneric(watchdog, { healthy: false });
    const thirdPid = (await watchdog.waitForLog((r) => started(r) && r.pid !== firstPid && r.pid !== secondPid)).pid as number;
    expect(() => process.kill(secondPid, 0)).toThrow();
    await watchdog.waitForLog((r) => answering(r) && r.pid === thirdPid);

    expectSpecialized(await specialize(watchdog, { path: join(FUNCTIONS, 'esm-controller'), function: 'after-504' }));
    expect(await callFunction(watchdog)).toMatchObject({ status: 200, text: 'esm hello world' });
    expect(await status(watchdog)).toMatchObject({ state: 'ready', function: 'after-504' });
  });
});

describe('a module that blocks its runtime longer than three health pings', () => {
  it('is judged by the load deadline (504), not by the missed pings; the replacement is not counted as a failure', async () => {
    // Pings every 100 ms would count three misses in ~1.3 s; the specialization has 3 s.
    const watchdog = await takeGeneric({ PILOTLIGHT_SPECIALIZE_TIMEOUT: '3s', PILOTLIGHT_HEALTHCHECK_INTERVAL: '100ms', PILOTLIGHT_MAX_RESTARTS: '0' });
    const blocked = await specialize(watchdog, { path: join(FUNCTIONS, 'blocks-at-import') });
    expectError(blocked, 504, 'PILOTLIGHT_SPECIALIZE_TIMEOUT');
    // What is left of the 3 s once the load is sent, in whole milliseconds.
    expect(blocked.body.message).toMatch(/^the runtime did not load the function within (29\d\d|3000) ms$/);
    expect(watchdog.logs.filter((r) => r.code === 'PILOTLIGHT_RUNTIME_UNRESPONSIVE')).toEqual([]);
    // With max_restarts 0, a replacement counted as a failure would leave the instance failed;
    // the next specialization waits for the clean runtime.
    expectSpecialized(await specialize(watchdog, { path: join(FUNCTIONS, 'esm-controller') }));
    expect(await callFunction(watchdog)).toMatchObject({ status: 200, text: 'esm hello world' });
  });
});

/** Bodies `/_/specialize` refuses with 400, and a word the message must name. */
const BAD_BODIES: Array<{ name: string; body: unknown; mentions: RegExp }> = [
  { name: 'a body that is not JSON', body: '{"path": "/srv/code",', mentions: /JSON/ },
  { name: 'a JSON array', body: [{ path: HELLO_TS }], mentions: /object/ },
  { name: 'JSON null', body: 'null', mentions: /object/ },
  { name: 'no source', body: { function: 'nameless' }, mentions: /source/ },
  { name: 'two sources', body: { path: HELLO_TS, url: 'http://127.0.0.1:9/code.tar.gz', sha256: HEX }, mentions: /path.*url/ },
  { name: 'an archive without format', body: { archive: 'AAAA' }, mentions: /format/ },
  { name: 'an archive with a bad format value', body: { archive: 'AAAA', format: 'rar' }, mentions: /format/ },
  { name: 'an archive that is not base64', body: { archive: 'not base64!', format: 'zip' }, mentions: /archive/ },
  { name: 'a url without sha256', body: { url: 'http://127.0.0.1:9/code.tar.gz' }, mentions: /sha256/ },
  { name: 'a sha256 that is not hex', body: { url: 'http://127.0.0.1:9/code.tar.gz', sha256: 'zz'.repeat(32) }, mentions: /sha256/ },
  { name: 'a sha256 of the wrong length', body: { url: 'http://127.0.0.1:9/code.tar.gz', sha256: 'abc' }, mentions: /sha256/ },
  { name: 'a url that is not http(s)', body: { url: 'file:///etc/passwd', sha256: HEX }, mentions: /url/ },
  { name: 'a relative path', body: { path: 'examples/hello-ts' }, mentions: /path/ },
  { name: 'a path that is not a string', body: { path: 42 }, mentions: /path/ },
  { name: 'an unknown extra field', body: { path: HELLO_TS, colour: 'blue' }, mentions: /colour/ },
  { name: 'env with a non-string value', body: { path: HELLO_TS, env: { PORT: 8080 } }, mentions: /env/ },
  { name: 'env that is not an object', body: { path: HELLO_TS, env: 'PORT=8080' }, mentions: /env/ },
  { name: 'env with a name containing "="', body: { path: HELLO_TS, env: { 'A=B': '1' } }, mentions: /env\.A=B: .*"="/ },
  { name: 'env with a NUL in a value', body: { path: HELLO_TS, env: { A: 'x\u0000y' } }, mentions: /env\.A: .*NUL/ },
  { name: 'a function name that is not a string', body: { path: HELLO_TS, function: ['a'] }, mentions: /function/ },
];

describe('one generic instance through every refusal, then a good specialization', () => {
  let watchdog: RunningWatchdog;

  beforeAll(async () => {
    watchdog = await startGeneric({
      PILOTLIGHT_SPECIALIZE_TIMEOUT: '2s',
      // Each failed load below replaces the runtime; code failing to load is not the runtime
      // failing, so those replacements must not count toward max_restarts (or this would be `failed`).
      PILOTLIGHT_MAX_RESTARTS: '1',
      PILOTLIGHT_MAX_CODE_ENTRIES: '10',
      PILOTLIGHT_MAX_CODE_SIZE: '128KiB',
    });
  });

  it.each(BAD_BODIES)('400 PILOTLIGHT_BAD_SPECIALIZE: $name', async ({ body, mentions }) => {
    const answer = await specialize(watchdog, body);
    expectError(answer, 400, 'PILOTLIGHT_BAD_SPECIALIZE');
    expect(answer.body.message).toMatch(mentions);
    await expectGeneric(watchdog);
  });

  it('400 PILOTLIGHT_ARCHIVE_UNSAFE and PILOTLIGHT_ARCHIVE_INVALID', async () => {
    const unsafe = makeArchive('tar.gz', [{ name: 'index.mjs', data: 'export default () => 1;' }, { name: '../escape.mjs', data: 'x' }]);
    expectError(await specialize(watchdog, { archive: unsafe.toString('base64'), format: 'tar.gz' }), 400, 'PILOTLIGHT_ARCHIVE_UNSAFE');
    await expectGeneric(watchdog);
    expectError(await specialize(watchdog, { archive: Buffer.from('no zip here').toString('base64'), format: 'zip' }), 400, 'PILOTLIGHT_ARCHIVE_INVALID');
    await expectGeneric(watchdog);
  });

  it('413 PILOTLIGHT_CODE_TOO_LARGE', async () => {
    const many = makeArchive('zip', Array.from({ length: 11 }, (_, i) => ({ name: `f${i}.js`, data: `${i}` })));
    expectError(await specialize(watchdog, { archive: many.toString('base64'), format: 'zip' }), 413, 'PILOTLIGHT_CODE_TOO_LARGE');
    await expectGeneric(watchdog);
  });

  it('413 PILOTLIGHT_CODE_TOO_LARGE for a chunked body with no length, as soon as it passes the limit', async () => {
    // 128 KiB of code is ~171 KiB of base64 plus 64 KiB for the rest of the JSON: 400 KiB is over.
    // The body's end is held back until the answer arrives: an answer only after the whole body
    // would come only when the 5 s fallback lets the end go.
    const encode = (text: string) => new TextEncoder().encode(text);
    let answered = false;
    let answeredWhileHeld = false;
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
      setTimeout(resolve, 5_000).unref();
    });
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent === 0) controller.enqueue(encode('{"archive":"'));
        if (sent < 25) {
          sent += 1;
          controller.enqueue(encode('A'.repeat(16 * 1024)));
          return;
        }
        await held;
        answeredWhileHeld = answered;
        controller.enqueue(encode('","format":"zip"}'));
        controller.close();
      },
    });
    const answer = await specialize(watchdog, body);
    answered = true;
    release();
    expectError(answer, 413, 'PILOTLIGHT_CODE_TOO_LARGE');
    await expectGeneric(watchdog);
    await new Promise((resolve) => setImmediate(resolve));
    expect(answeredWhileHeld).toBe(true);
  });

  it('422 PILOTLIGHT_FETCH_FAILED and PILOTLIGHT_CHECKSUM_MISMATCH', async () => {
    expectError(await specialize(watchdog, { url: `${codeServer.url}/nothing-here.tar.gz`, sha256: HEX }), 422, 'PILOTLIGHT_FETCH_FAILED');
    await expectGeneric(watchdog);
    codeServer.serve('/combined.tar.gz', helloArchive('tar.gz'));
    expectError(await specialize(watchdog, { url: `${codeServer.url}/combined.tar.gz`, sha256: HEX }), 422, 'PILOTLIGHT_CHECKSUM_MISMATCH');
    await expectGeneric(watchdog);
  });

  it('422 PILOTLIGHT_LOAD_FAILED (throws at import, no handler)', async () => {
    const threw = await specialize(watchdog, { path: join(FUNCTIONS, 'throws-at-import') });
    expectError(threw, 422, 'PILOTLIGHT_LOAD_FAILED');
    expect(threw.body.reason).toBe('PILOTLIGHT_LOAD_FAILED');
    await expectGeneric(watchdog, { healthy: false });
    const replaced = watchdog.logs.find((r) => String(r.msg).startsWith('restarting the function process'));
    expect(replaced).toMatchObject({ level: 'warn', code: 'PILOTLIGHT_LOAD_FAILED' });
    const shapeless = await specialize(watchdog, { path: join(FUNCTIONS, 'no-handler') });
    expectError(shapeless, 422, 'PILOTLIGHT_LOAD_FAILED');
    expect(shapeless.body.reason).toBe('PILOTLIGHT_NO_HANDLER');
    await expectGeneric(watchdog, { healthy: false });
    const broken = makeArchive('tar.gz', [
      { name: 'package.json', data: '{ "main": ' },
      { name: 'index.mjs', data: 'export default () => 1;' },
    ]);
    const unreadable = await specialize(watchdog, { archive: broken.toString('base64'), format: 'tar.gz' });
    expectError(unreadable, 422, 'PILOTLIGHT_LOAD_FAILED');
    expect(unreadable.body.message).toMatch(/package\.json is not valid JSON .*: fix it or remove it/);
    await expectGeneric(watchdog, { healthy: false });
  });

  it('504 PILOTLIGHT_SPECIALIZE_TIMEOUT', async () => {
    expectError(await specialize(watchdog, { path: join(FUNCTIONS, 'hangs-at-import') }), 504, 'PILOTLIGHT_SPECIALIZE_TIMEOUT');
    await expectGeneric(watchdog, { healthy: false });
  });

  it('after all of them, specializes from an archive and serves; a further attempt is 409', async () => {
    const answer = await specialize(watchdog, { archive: helloArchive('zip').toString('base64'), format: 'zip', function: 'survivor' });
    expectSpecialized(answer);
    await expectHelloWorld(watchdog);
    expect(await status(watchdog)).toMatchObject({ state: 'ready', function: 'survivor' });
    expect(await probe(watchdog, 'ready')).toBe(200);
    expect(await probe(watchdog, 'health')).toBe(200);
    expectError(await specialize(watchdog, { path: HELLO_TS }), 409, 'PILOTLIGHT_NOT_GENERIC');
    // Every refusal above was logged with its code, none as an internal error.
    expect(watchdog.logs.filter((r) => r.code === 'PILOTLIGHT_INTERNAL')).toEqual([]);
  });
});

describe('a runtime instance whose TMPDIR cannot be written', () => {
  it('exits 1 with PILOTLIGHT_START_FAILED as a JSON log line that names TMPDIR and the fix', async () => {
    // Under /proc nothing can be created, not even by root (which CI may run as).
    const unwritable = '/proc/pilotlight-no-such-dir';
    const failing = await startWatchdog({ env: { PILOTLIGHT_RUNTIME: 'node', TMPDIR: unwritable }, waitFor: 'nothing' });
    expect((await failing.exited).code).toBe(1);
    const fatal = failing.logs.find((record) => record.level === 'fatal');
    expect(fatal).toMatchObject({ code: 'PILOTLIGHT_START_FAILED' });
    expect(fatal?.msg).toContain(unwritable);
    expect(fatal?.msg).toContain('writable TMPDIR');
    expect(failing.rawLines).toEqual([]);
  });
});

describe('SIGTERM while a specialization is loading', () => {
  it('answers it 503 PILOTLIGHT_DRAINING (no fault of the code), restarts nothing, exits 0', async () => {
    const watchdog = await takeGeneric();
    const loading = specialize(watchdog, { path: join(FUNCTIONS, 'hangs-at-import') });
    await watchdog.waitForLog((r) => r.state === 'specializing');
    watchdog.process.kill('SIGTERM');
    expectError(await loading, 503, 'PILOTLIGHT_DRAINING');
    expect((await watchdog.exited).code).toBe(0);
    expect(watchdog.logs.filter((r) => String(r.msg).startsWith('restarting the function process'))).toEqual([]);
  });
});

describe('a runtime that never says hello', () => {
  it('leaves the instance starting and says why in the log after 5 s', async () => {
    const silent = fileURLToPath(new URL('../fixtures/silent-runtime.js', import.meta.url));
    const watchdog = await startWatchdog({
      env: { PILOTLIGHT_RUNTIME: 'node', PILOTLIGHT_RUNTIME_COMMAND: `${process.execPath} ${silent}` },
      waitFor: 'listening',
    });
    const warning = await watchdog.waitForLog((r) => r.code === 'PILOTLIGHT_RUNTIME_NO_HELLO', 20_000);
    expect(warning.level).toBe('warn');
    expect(warning.msg).toContain('hello');
    expect(warning.msg).toContain('docs/runtime-protocol.md');
    expect(await status(watchdog)).toMatchObject({ state: 'starting' });
  });
});
