import { timingSafeEqual } from 'node:crypto';
import { rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { Config } from '../config/settings.js';
import { sendError, WatchdogError } from '../errors.js';
import type { Lifecycle } from '../lifecycle.js';
import type { RuntimeRunner } from '../runners/runtime.js';
import type { CodeSource } from '../specialize/source.js';
import { parseSpecializeRequest } from '../specialize/request.js';

/** What the instance knows about its function, set by specialization. */
export interface Identity {
  functionName: string | undefined;
  specializeMs: number | undefined;
}

/** What the specialize endpoint works with. */
export interface SpecializeDeps {
  readonly config: Config;
  readonly lifecycle: Lifecycle;
  /** The runtime to load into; undefined when the instance has none. */
  readonly runtime: RuntimeRunner | undefined;
  readonly identity: Identity;
  readonly logger: Logger;
  /** Told how long a successful specialization took. */
  readonly specialized: (seconds: number) => void;
}

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;
const BEARER = /^bearer +(.+)$/i;

function authorize(req: IncomingMessage, token: string | undefined): void {
  if (token === undefined) {
    if (!LOOPBACK.test(req.socket.remoteAddress ?? '')) {
      throw new WatchdogError('PILOTLIGHT_UNAUTHORIZED', 'without PILOTLIGHT_ADMIN_TOKEN only loopback callers may specialize');
    }
    return;
  }
  // The scheme is case-insensitive (RFC 9110, 11.1); the token is compared in constant time.
  const given = Buffer.from(BEARER.exec(req.headers.authorization ?? '')?.[1] ?? '');
  const wanted = Buffer.from(token);
  if (given.length !== wanted.length || !timingSafeEqual(given, wanted)) {
    throw new WatchdogError('PILOTLIGHT_UNAUTHORIZED', 'specialization needs the header Authorization: Bearer <PILOTLIGHT_ADMIN_TOKEN>', {
      'www-authenticate': 'Bearer',
    });
  }
}

function shuttingDown(message: string): WatchdogError {
  return new WatchdogError('PILOTLIGHT_DRAINING', message, { connection: 'close' });
}

function refuseUnlessGeneric(deps: SpecializeDeps): void {
  const state = deps.lifecycle.state;
  if (!deps.runtime) throw new WatchdogError('PILOTLIGHT_NOT_GENERIC', 'this instance has no runtime to load code into (set PILOTLIGHT_RUNTIME)');
  if (state === 'specializing') throw new WatchdogError('PILOTLIGHT_SPECIALIZING', 'a specialization of this instance is already in progress');
  if (state === 'starting') throw new WatchdogError('PILOTLIGHT_NOT_READY', 'the runtime is still starting; retry shortly', { 'retry-after': '1' });
  if (state === 'draining') throw shuttingDown('this instance is shutting down; specialize another instance');
  if (state === 'failed') throw new WatchdogError('PILOTLIGHT_FAILED', 'the runtime could not be kept running; this instance is failed, specialize another one');
  if (state !== 'generic') throw new WatchdogError('PILOTLIGHT_NOT_GENERIC', `this instance is ${state}, not generic: it can be specialized only once`);
}

function codeTooLarge(limit: number): WatchdogError {
  return new WatchdogError('PILOTLIGHT_CODE_TOO_LARGE', `the specialize body is larger than the ${limit} bytes max_code_size allows as base64`);
}

/**
 * The body as text, refused as soon as it grows past `limit` bytes (0: no limit); the rest of a
 * refused body is read and dropped. Plain events rather than an async iterator: this runs once,
 * cold, while a request waits, and the iterator's machinery was measured at ~0.5 ms of that.
 */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const collect = (chunk: Buffer) => {
      size += chunk.length;
      if (limit > 0 && size > limit) {
        req.off('data', collect);
        req.resume();
        reject(codeTooLarge(limit));
      } else {
        chunks.push(chunk);
      }
    };
    req.on('data', collect);
    req.once('end', () => resolve(Buffer.concat(chunks, size).toString('utf8')));
    // A client gone, too slow or sending a broken body: settles the wait (after `end`, a no-op).
    const cut = () => reject(new WatchdogError('PILOTLIGHT_BAD_SPECIALIZE', 'the specialize request ended before its body did'));
    req.once('error', cut);
    req.once('close', cut);
  });
}

async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (limit > 0 && declared > limit) throw codeTooLarge(limit);
  const body = await readBody(req, limit);
  try {
    return JSON.parse(body) as unknown;
  } catch (error) {
    throw new WatchdogError('PILOTLIGHT_BAD_SPECIALIZE', `the body is not JSON: ${(error as Error).message}`);
  }
}

/**
 * The archive and url sources (with undici, tar and yauzl), imported on first use rather than at
 * start: an instance given its function at start, or specialized by path, never needs them, and
 * they were about a third of the watchdog's import time.
 */
let codeSources: Promise<typeof import('../specialize/source.js')> | undefined;
const loadCodeSources = () => (codeSources ??= import('../specialize/source.js'));

/**
 * Downloads and unpacks an archive or url source, abandoned at `specialize_timeout`. A path source
 * needs none of this, and none of its cost in the specialization a request waits on.
 *
 * The abandoned work stops at its next step and deletes its directory; should it have finished
 * in the meantime, the directory it returns is deleted here, as nothing will load from it.
 */
async function unpackWithin(request: CodeSource, config: Config): Promise<string> {
  const timeout = new AbortController();
  const timer =
    config.specializeTimeout > 0
      ? setTimeout(
          () => timeout.abort(new WatchdogError('PILOTLIGHT_SPECIALIZE_TIMEOUT', `specialization took longer than ${config.specializeTimeout} ms`)),
          config.specializeTimeout,
        )
      : undefined;
  try {
    const deadline = new Promise<never>((_, reject) => timeout.signal.addEventListener('abort', () => reject(timeout.signal.reason)));
    const limits = { maxBytes: config.maxCodeSize, maxEntries: config.maxCodeEntries };
    const unpacked = loadCodeSources().then(({ materialize }) => materialize(request, limits, timeout.signal));
    try {
      return await Promise.race([unpacked, deadline]);
    } catch (error) {
      if (timeout.signal.aborted) {
        void unpacked.then((dir) => rm(dir, { recursive: true, force: true })).catch(() => undefined);
      }
      throw error;
    }
  } finally {
    clearTimeout(timer);
  }
}

async function specialize(req: IncomingMessage, res: ServerResponse, deps: SpecializeDeps): Promise<void> {
  const { config, lifecycle, identity, logger } = deps;
  authorize(req, config.adminToken);
  refuseUnlessGeneric(deps);
  (deps.runtime as RuntimeRunner).wake();
  const body = await readJson(req, config.maxCodeSize > 0 ? Math.ceil((config.maxCodeSize * 4) / 3) + 65_536 : 0);
  const parsed = parseSpecializeRequest(body);
  if (!parsed.ok) throw new WatchdogError('PILOTLIGHT_BAD_SPECIALIZE', parsed.problems.join('; '), {}, { problems: parsed.problems });
  refuseUnlessGeneric(deps);
  const { request } = parsed;
  const started = performance.now();
  lifecycle.set('specializing');
  // Code the watchdog unpacked is its to delete once it is of no use.
  let unpacked: string | undefined;
  try {
    const root = 'path' in request ? request.path : (unpacked = await unpackWithin(request, config));
    const remaining = config.specializeTimeout > 0 ? Math.max(1, config.specializeTimeout - (performance.now() - started)) : 0;
    const loaded = await (deps.runtime as RuntimeRunner).load(
      { root, entrypoint: request.entrypoint, function: request.function, env: request.env, owned: unpacked !== undefined },
      remaining,
    );
    identity.specializeMs = performance.now() - started;
    identity.functionName = request.function ?? identity.functionName;
    const answer = JSON.stringify({ state: 'ready', specializeMs: identity.specializeMs, loadMs: loaded.ms, routes: loaded.routes });
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(answer) });
    res.end(answer);
    // The platform sends the first request when this answer arrives: the state change (and its
    // log line) and the bookkeeping come after it, still in this tick, so no request can see
    // the instance between the answer and `ready`.
    lifecycle.set('ready', `specialized in ${identity.specializeMs.toFixed(1)} ms`);
    deps.specialized(identity.specializeMs / 1000);
    logger.info({ specializeMs: identity.specializeMs, loadMs: loaded.ms, routes: loaded.routes, function: identity.functionName }, 'specialized');
  } catch (error) {
    if (lifecycle.state === 'specializing') lifecycle.set('generic', `specialization failed: ${(error as Error).message}`);
    if (unpacked !== undefined) await rm(unpacked, { recursive: true, force: true });
    // Shutdown stops the runtime under a load; that is no fault of the code being loaded.
    if (lifecycle.state === 'draining') {
      throw shuttingDown('this instance began shutting down during the specialization; specialize another instance');
    }
    throw error;
  }
}

/**
 * Readies a generic instance, idle until it is specialized, for the specialization: reads and
 * validates a made-up body once (zod compiles a schema on its first use, ~3 ms the request would
 * otherwise wait for) and imports the archive and url sources in the background. An instance
 * that never becomes generic never pays for either.
 */
export function warmSpecialization(): void {
  const body = Object.assign(Readable.from([Buffer.from('{"path":"/","function":"warm-up"}')]), { headers: {} });
  void readJson(body as unknown as IncomingMessage, 0).then(parseSpecializeRequest);
  loadCodeSources().catch(() => {
    // Importing again on use will report it.
    codeSources = undefined;
  });
}

/**
 * `POST /_/specialize`: loads a function into this generic instance, once. Every refusal is a
 * JSON error with a stable code, and leaves the instance generic and usable. The promise settles
 * once the answer is written (or the client is gone), so shutdown can wait for it.
 */
export function createSpecializeHandler(deps: SpecializeDeps): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return (req, res) =>
    specialize(req, res, deps)
      .catch((error: unknown) => {
        const known =
          error instanceof WatchdogError ? error : new WatchdogError('PILOTLIGHT_INTERNAL', `specialization failed inside the watchdog: ${(error as Error).message}`);
        // The platform's own request id, when it sent one, ties its log to this refusal.
        const requestId = req.headers['x-request-id'] as string | undefined;
        if (known.code === 'PILOTLIGHT_INTERNAL') deps.logger.error({ err: error, code: known.code, request_id: requestId }, known.message);
        else deps.logger.warn({ code: known.code, request_id: requestId }, `specialization refused: ${known.message}`);
        sendError(res, known, requestId);
      })
      .then(() => finished(res))
      .catch(() => undefined);
}
