/**
 * `@pilotlight/sdk/testing`: call a function in-process with a synthetic request and get its
 * response — no server, no watchdog. The same code path the runtime serves with, so what passes
 * here behaves the same deployed.
 *
 * @example
 * ```ts
 * const res = await invoke(HelloWorldFunction, { method: 'POST', headers: { name: 'world' } });
 * expect(await res.text()).toBe('hello world');
 * ```
 */
import { inject } from 'light-my-request';
import { serveModule, type ServedFunction } from './serve/function.js';

/** A synthetic request. */
export interface TestRequest {
  /** HTTP method, default `GET`. */
  readonly method?: string;
  /** Path and query, default `/`. */
  readonly path?: string;
  /** Request headers, e.g. `x-request-id` or `traceparent` to fix the ids the context sees. */
  readonly headers?: Readonly<Record<string, string>>;
  /** A string or bytes as is; anything else as JSON (with its content-type). */
  readonly body?: unknown;
}

/** Options of {@link invoke}. */
export interface InvokeOptions {
  /** The function name the context reports; default `test`. */
  readonly functionName?: string;
  /** Gives the invocation a deadline this many ms away, as an exec timeout would. */
  readonly timeoutMs?: number;
}

/** Served targets, by target and then by the function name their context reports. */
const served = new WeakMap<object, Map<string, Promise<ServedFunction>>>();

/** What a target serves: a controller class, a plain function, or a whole module namespace. */
async function serveTarget(target: object, options: InvokeOptions): Promise<ServedFunction> {
  const name = options.functionName ?? 'test';
  let byName = served.get(target);
  if (!byName) {
    byName = new Map();
    served.set(target, byName);
  }
  let ready = byName.get(name);
  if (!ready) {
    const mod = typeof target === 'function' ? { [target.name || 'default']: target, default: target } : (target as Record<string, unknown>);
    const fn = serveModule(mod, undefined, { name, instance: 'test' }, 'the function under test');
    ready = fn.initialize().then(() => fn);
    byName.set(name, ready);
  }
  return ready;
}

/**
 * Invokes `target` — a routing-controllers class, a plain `(request, context)` function, or a
 * module namespace (`import * as fn from './index.js'`) — with `request`, running its
 * initializer first (once per target and function name), and resolves with the Web `Response`
 * it produced.
 */
export async function invoke(target: object, request: TestRequest | Request = {}, options: InvokeOptions = {}): Promise<Response> {
  const fn = await serveTarget(target, options);
  let method: string;
  let path: string;
  let headers: Record<string, string>;
  let payload: string | Buffer | undefined;
  if (request instanceof Request) {
    const url = new URL(request.url);
    method = request.method;
    path = url.pathname + url.search;
    headers = Object.fromEntries(request.headers);
    payload = request.body ? Buffer.from(await request.arrayBuffer()) : undefined;
  } else {
    method = request.method ?? 'GET';
    path = request.path ?? '/';
    headers = { ...request.headers };
    const body = request.body;
    if (typeof body === 'string' || Buffer.isBuffer(body)) payload = body;
    else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] ??= 'application/json';
    }
  }
  if (options.timeoutMs !== undefined) headers['x-pilotlight-deadline'] = String(Date.now() + options.timeoutMs);
  const response = await inject(fn.listener, { method: method as 'GET', url: path, headers, payload });
  const out = new Headers();
  for (const [name, value] of Object.entries(response.headers)) {
    if (Array.isArray(value)) for (const v of value) out.append(name, String(v));
    else if (value !== undefined) out.set(name, String(value));
  }
  const noBody = response.statusCode === 204 || response.statusCode === 304 || method === 'HEAD';
  return new Response(noBody ? null : response.rawPayload, { status: response.statusCode, headers: out });
}
