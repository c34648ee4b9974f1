import type { Logger } from '@pilotlight/logger';

/** Which lifecycle moment a hook runs at. */
export type HookKind = 'initializer' | 'preStop';

/** A hook method found on a class. */
export interface HookMethod {
  readonly kind: HookKind;
  readonly target: Function;
  readonly method: string | symbol;
}

/** What a pre-stop hook is told. */
export interface PreStopInfo {
  /** When the watchdog stops waiting and kills the runtime. */
  readonly deadline: Date;
  /** Milliseconds left until then. */
  remainingMs(): number;
  /** The function's logger. */
  readonly logger: Logger;
}

const KEY = Symbol.for('pilotlight.sdk.hooks');
type Holder = { [KEY]?: HookMethod[] };

/** Every hook registered by decorators in this process (shared by all copies of the SDK). */
export function registeredHooks(): readonly HookMethod[] {
  return ((globalThis as Holder)[KEY] ??= []);
}

function hook(kind: HookKind): MethodDecorator {
  return (prototype, method) => {
    ((globalThis as Holder)[KEY] ??= []).push({ kind, target: prototype.constructor, method });
  };
}

/**
 * Method decorator: runs once after the function's code is loaded, before the instance reports
 * ready. If it throws (or rejects), loading fails: specialization answers 422 and the instance
 * stays generic.
 */
export function Initializer(): MethodDecorator {
  return hook('initializer');
}

/**
 * Method decorator: runs when the instance drains (SIGTERM), after in-flight requests finished,
 * with the grace time left ({@link PreStopInfo}). Use it to flush buffers and close connections.
 */
export function PreStop(): MethodDecorator {
  return hook('preStop');
}
