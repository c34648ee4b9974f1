import { AsyncLocalStorage } from 'node:async_hooks';

/** What identifies the invocation a log line belongs to. Field names are OpenTelemetry's for logs. */
export interface InvocationFields {
  /** The request id (`X-Request-Id`). */
  readonly request_id: string;
  /** W3C trace id, 32 hex digits. */
  readonly trace_id: string;
  /** The invocation's span id, 16 hex digits. */
  readonly span_id: string;
  /** W3C trace flags, 2 hex digits. */
  readonly trace_flags: string;
  /** The function's name. */
  readonly function?: string | undefined;
  /** The instance's name. */
  readonly instance?: string | undefined;
}

/** What the storage holds per invocation: the fields logged, and the SDK's context object. */
export interface InvocationScope {
  /** Written on every log line of the invocation. */
  readonly fields: InvocationFields;
  /** The SDK's invocation context object. */
  readonly context?: unknown;
}

const KEY = Symbol.for('pilotlight.invocation-storage');
type Holder = { [KEY]?: AsyncLocalStorage<InvocationScope> };

/**
 * The storage that carries the active invocation across `await`. Kept on `globalThis` under a
 * registered symbol so that a function bundling its own copy of this package still sees the
 * runtime's invocations.
 */
export const invocationStorage: AsyncLocalStorage<InvocationScope> = ((globalThis as Holder)[KEY] ??=
  new AsyncLocalStorage<InvocationScope>());

/** Runs `fn` as part of an invocation; log lines written inside carry its fields. */
export function runInInvocation<T>(scope: InvocationScope, fn: () => T): T {
  return invocationStorage.run(scope, fn);
}

/** The active invocation's fields, if any. */
export function currentInvocation(): InvocationFields | undefined {
  return invocationStorage.getStore()?.fields;
}
