import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import type { RunningWatchdog } from './watchdog.js';

/** DESIGN.md's HelloWorldFunction, built (`package.json` + `dist/`). */
export const HELLO_TS = fileURLToPath(new URL('../../examples/hello-ts', import.meta.url));
/** Small functions used as code to specialize with. */
export const FUNCTIONS = fileURLToPath(new URL('../fixtures/functions/', import.meta.url));

/** An answer of `POST /_/specialize`, its JSON body parsed when it is JSON. */
export interface SpecializeAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly body: Record<string, unknown>;
}

/**
 * POSTs `body` to `/_/specialize`: JSON-encoded, unless it is already a string or a stream (sent
 * chunked, with no length).
 */
export async function specialize(
  watchdog: RunningWatchdog,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<SpecializeAnswer> {
  const res = await fetch(`${watchdog.url}/_/specialize`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' || body instanceof ReadableStream ? body : JSON.stringify(body),
    duplex: 'half',
  } as RequestInit);
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // left empty: the assertions on `body` then fail with the text in view
  }
  return { status: res.status, headers: res.headers, text, body: parsed };
}

/** Asserts a watchdog error: the status, a JSON body with the stable code and a message, the marking header. */
export function expectError(answer: SpecializeAnswer, status: number, code: string): void {
  expect({ status: answer.status, code: answer.body.code }, answer.text).toEqual({ status, code });
  expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
  expect(answer.headers.get('x-pilotlight-error')).toBe(code);
  expect(typeof answer.body.message).toBe('string');
  expect((answer.body.message as string).length).toBeGreaterThan(0);
}

/** Asserts a successful specialization answer. */
export function expectSpecialized(answer: SpecializeAnswer): void {
  expect(answer.status, answer.text).toBe(200);
  expect(answer.body.state).toBe('ready');
  expect(typeof answer.body.specializeMs).toBe('number');
}

/** `GET /_/status` as JSON. */
export async function status(watchdog: RunningWatchdog): Promise<Record<string, unknown>> {
  return (await fetch(`${watchdog.url}/_/status`).then((r) => r.json())) as Record<string, unknown>;
}

/** The status code of `GET /_/<name>`. */
export async function probe(watchdog: RunningWatchdog, name: 'ready' | 'health'): Promise<number> {
  const res = await fetch(`${watchdog.url}/_/${name}`);
  await res.arrayBuffer();
  return res.status;
}

/**
 * Asserts the instance is still generic and unharmed: state `generic`, not ready, and (unless the
 * refusal restarted the runtime, which a failed load does) healthy.
 */
export async function expectGeneric(watchdog: RunningWatchdog, { healthy = true } = {}): Promise<void> {
  expect((await status(watchdog)).state).toBe('generic');
  expect(await probe(watchdog, 'ready')).toBe(503);
  if (healthy) expect(await probe(watchdog, 'health')).toBe(200);
}

/** `POST /` with header `name: world`: what DESIGN.md's HelloWorldFunction answers `hello world` to. */
export async function callFunction(watchdog: RunningWatchdog, name = 'world'): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await fetch(`${watchdog.url}/`, { method: 'POST', headers: { name } });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

/** Asserts the instance serves DESIGN.md's HelloWorldFunction. */
export async function expectHelloWorld(watchdog: RunningWatchdog): Promise<void> {
  const answer = await callFunction(watchdog);
  expect(answer.status, answer.text).toBe(200);
  expect(answer.text).toBe('hello world');
}
