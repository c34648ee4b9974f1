import { invocationStorage, type Logger } from '@pilotlight/logger';
import { createParamDecorator } from 'routing-controllers';

/**
 * What a function knows about the invocation it is serving. Passed to plain functions as their
 * second argument, injected into controller methods with {@link Context}, and available anywhere
 * inside the invocation through {@link currentContext}.
 */
export interface InvocationContext {
  /** `X-Request-Id`: as the caller sent it, or made up by the watchdog. */
  readonly requestId: string;
  /** The W3C trace this invocation belongs to (32 hex digits). */
  readonly traceId: string;
  /** This invocation's own span (16 hex digits); its parent is the caller's span. */
  readonly spanId: string;
  /** W3C trace flags (`01` sampled). */
  readonly traceFlags: string;
  /** The `traceparent` to send on calls this invocation makes, so they join the trace. */
  readonly traceparent: string;
  /** When the watchdog will answer 504 instead (exec timeout or `X-Timeout`); undefined: no limit. */
  readonly deadline: Date | undefined;
  /** Milliseconds until {@link InvocationContext.deadline}; `Infinity` without one. */
  remainingMs(): number;
  /** The function's name, as the platform gave it at specialization or start. */
  readonly functionName: string | undefined;
  /** `PILOTLIGHT_FUNCTION_VERSION`, `K_REVISION`, or the version in the function's package.json. */
  readonly functionVersion: string | undefined;
  /** The instance serving this invocation (the pod name on Kubernetes). */
  readonly instanceId: string | undefined;
  /** A logger whose lines carry this invocation's ids, even when used outside its async flow. */
  readonly logger: Logger;
  /**
   * Aborted once the response can no longer be delivered: the caller went away, or the watchdog
   * gave up on the invocation (exec timeout, `X-Timeout`) and closed it. Pass it to `fetch` and
   * other cancellable work so nobody waits for an answer that has no one to go to. (A plain
   * function's `request.signal` is the Web default and never aborts: use this one.)
   */
  readonly signal: AbortSignal;
}

/** The context of the invocation running now, or undefined outside one. */
export function currentContext(): InvocationContext | undefined {
  return invocationStorage.getStore()?.context as InvocationContext | undefined;
}

/**
 * Parameter decorator: injects the {@link InvocationContext}.
 *
 * @example
 * ```ts
 * @Post('/')
 * handle(@Context() ctx: InvocationContext) {
 *   ctx.logger.info({ left: ctx.remainingMs() }, 'working');
 * }
 * ```
 */
export function Context(): ParameterDecorator {
  return createParamDecorator({ required: false, value: () => currentContext() }) as ParameterDecorator;
}
