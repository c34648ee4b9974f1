import { type Agent, type IncomingHttpHeaders, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { expect } from 'vitest';
import { FIXTURES, freePort, type RunningWatchdog, type StartOptions, startWatchdog } from './watchdog.js';

/** A response read in full through node:http. */
export interface RawResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** The body as JSON (throws if it is not). */
  json<T = Record<string, unknown>>(): T;
}

/** Options for {@link send}. */
export interface SendOptions {
  method?: string;
  headers?: Record<string, string | string[]>;
  /**
   * A Buffer/string is sent with a Content-Length; an (async) iterable of chunks is sent chunked,
   * one write per chunk.
   */
  body?: Buffer | string | Iterable<Buffer | string> | AsyncIterable<Buffer | string>;
  agent?: Agent | false;
}

/**
 * One request through node:http rather than fetch: fetch refuses the hop-by-hop headers
 * (`Connection`, `Keep-Alive`, `TE`) these tests must send, and cannot send a chunked body
 * chunk by chunk.
 *
 * When the server answers before the request body is fully written (a 413), the write side
 * may fail with EPIPE/ECONNRESET; that is expected and the response still counts.
 */
export function send(url: string, options: SendOptions = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let responded = false;
    const req = httpRequest(url, { method: options.method ?? 'GET', headers: options.headers, agent: options.agent ?? false }, (res) => {
      responded = true;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          json: <T>() => JSON.parse(body.toString('utf8')) as T,
        });
      });
    });
    req.on('error', (error) => {
      if (!responded) reject(error);
    });
    const { body } = options;
    if (body === undefined) {
      req.end();
    } else if (typeof body === 'string' || Buffer.isBuffer(body)) {
      req.setHeader('content-length', Buffer.byteLength(body));
      req.end(body);
    } else {
      void (async () => {
        try {
          for await (const chunk of body) {
            // A server that answered early (413) and closed stops the upload, not the response.
            if (req.destroyed) break;
            if (!req.write(chunk)) {
              await new Promise<void>((resolve) => {
                const done = () => {
                  req.off('drain', done).off('close', done);
                  resolve();
                };
                req.once('drain', done).once('close', done);
              });
            }
          }
          req.end();
        } catch (error) {
          req.destroy(error as Error);
        }
      })();
    }
  });
}

/** GET `path` on a server and parse the JSON answer (for talking to an upstream directly). */
export async function getJson<T = Record<string, unknown>>(base: string, path: string): Promise<T> {
  const res = await fetch(`${base}${path}`);
  return (await res.json()) as T;
}

/** Polls `check` until it returns a truthy value, failing after `timeoutMs`. */
export async function waitUntil<T>(check: () => Promise<T> | T, what: string, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 15));
  }
}

/** True while a process with this pid exists (signal 0 checks without signalling). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/** A watchdog in http mode together with the upstream it supervises. */
export interface HttpSetup {
  readonly watchdog: RunningWatchdog;
  readonly upstreamPort: number;
  /** The upstream's own address, for driving the fixture without going through the watchdog. */
  readonly upstream: string;
}

/**
 * Starts the watchdog in http mode supervising `node test/fixtures/<fixture>` on a free port
 * (passed to the fixture as UPSTREAM_PORT).
 */
export async function startHttp(
  fixture: string,
  options: { env?: Record<string, string | undefined>; waitFor?: StartOptions['waitFor']; upstreamPath?: string } = {},
): Promise<HttpSetup> {
  const upstreamPort = await freePort();
  const upstream = `http://127.0.0.1:${upstreamPort}`;
  const watchdog = await startWatchdog({
    env: {
      PILOTLIGHT_MODE: 'http',
      PILOTLIGHT_UPSTREAM_URL: upstream + (options.upstreamPath ?? ''),
      UPSTREAM_PORT: String(upstreamPort),
      ...options.env,
    },
    args: ['--', process.execPath, `${FIXTURES}${fixture}`],
    waitFor: options.waitFor,
  });
  return { watchdog, upstreamPort, upstream };
}

/** Resolves once the http-upstream fixture holds a request with each of `ids` (via /hold or /slow). */
export async function waitForHeld(upstream: string, ids: readonly string[]): Promise<void> {
  await waitUntil(async () => {
    const { held } = await getJson<{ held: string[] }>(upstream, '/held');
    return ids.every((id) => held.includes(id));
  }, `the upstream holds ${ids.join(', ')}`);
}

/** Answers every request the http-upstream fixture holds (ignores an upstream that is gone). */
export async function releaseAll(upstream: string): Promise<void> {
  await fetch(`${upstream}/release`).then((r) => r.body?.cancel(), () => undefined);
}

/** A watchdog error's JSON body. */
export type ErrorBody = { code: string; message: string; requestId?: string };

/** Asserts `res` is an error the watchdog made (not the function), with `status` and `code`. */
export function expectWatchdogError(res: RawResponse, status: number, code: string): ErrorBody {
  expect(res.status).toBe(status);
  expect(res.headers['x-pilotlight-error']).toBe(code);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json<ErrorBody>();
  expect(body.code).toBe(code);
  expect(typeof body.message).toBe('string');
  expect(body.message).not.toBe('');
  return body;
}

/**
 * Writes `bytes` on a new connection and resolves with everything read until the watchdog closes
 * it: for requests node:http will not send, and answers it would not show (the reason phrase,
 * several responses on one connection). `text` is all of it; the rest describes the first response.
 */
export function rawExchange(port: number, bytes: string): Promise<RawResponse & { text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', body = ''] = text.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: Buffer.from(body), json: <T>() => JSON.parse(body) as T, text });
    });
  });
}
