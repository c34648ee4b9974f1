import { fileURLToPath } from 'node:url';
import { specialize } from './specialize.js';
import { FIXTURES, type LogRecord, type RunningWatchdog, type StartOptions, startWatchdog } from './watchdog.js';

/** Plain-JS SDK functions the SDK tests load into the Node runtime. */
export const SDK_FIXTURES = `${FIXTURES}sdk/`;
/** The repository's built examples. */
export const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));

/** The body of `POST /_/specialize`: one source plus the optional fields. */
export interface SpecializeBody {
  readonly path: string;
  readonly entrypoint?: string;
  readonly function?: string;
  readonly env?: Record<string, string>;
}

/**
 * Starts the real watchdog with the Node runtime pre-started and waits until the instance is
 * `generic` (no code yet). `PILOTLIGHT_INSTANCE` defaults to a fixed name the tests can compare.
 */
export async function startGeneric(env: StartOptions['env'] = {}): Promise<RunningWatchdog> {
  const watchdog = await startWatchdog({
    env: { PILOTLIGHT_RUNTIME: 'node', PILOTLIGHT_INSTANCE: 'sdk-test-instance', ...env },
    waitFor: 'listening',
  });
  await watchdog.waitForState('generic', 20_000);
  return watchdog;
}

/** A generic instance specialized with `body`; fails the test if specialization is refused. */
export async function startSpecialized(body: SpecializeBody, env: StartOptions['env'] = {}): Promise<RunningWatchdog> {
  const watchdog = await startGeneric(env);
  const answer = await specialize(watchdog, body);
  if (answer.status !== 200) {
    throw new Error(`specialize answered ${answer.status}: ${JSON.stringify(answer.body)}\n${watchdog.logs.map((l) => JSON.stringify(l)).join('\n')}`);
  }
  return watchdog;
}

/** A fresh W3C trace: 32 hex trace id, 16 hex parent span id. */
export function newTrace(): { traceId: string; parentId: string; traceparent: string } {
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');
  const traceId = hex(32);
  const parentId = hex(16);
  return { traceId, parentId, traceparent: `00-${traceId}-${parentId}-01` };
}

/** The log records the function's own code wrote (runtime stdout lines merged by the watchdog). */
export function functionLines(watchdog: RunningWatchdog, predicate: (record: LogRecord) => boolean = () => true): LogRecord[] {
  return watchdog.logs.filter((record) => record.stream === 'stdout' && predicate(record));
}

/** What the context fixtures (every runtime's) answer with: their invocation context as JSON. */
export interface Described {
  requestId: string;
  traceId: string;
  spanId: string;
  traceFlags: string;
  traceparent: string;
  deadline: number | null;
  remainingMs: number | null;
  functionName: string | null;
  functionVersion: string | null;
  instanceId: string | null;
  hasLogger: boolean;
  sameAsCurrent: boolean;
  requestIdHeader?: string | null;
}
