import { invocationStorage } from './invocation.js';

/** A scale hint from function code, merged by the watchdog into the hints it computes itself. */
export interface ScaleHint {
  /** true: this instance cannot take more work right now; false: it can again. */
  readonly saturated?: boolean;
  /** A load figure of the function's own (queue length, items pending, 0–1 utilisation …). */
  readonly load?: number;
  /** What `load` measures, for dashboards. */
  readonly metric?: string;
}

/** Where hints go: set by the runtime to its control channel. */
export type HintSink = (hint: ScaleHint & { readonly request_id?: string }) => void;

const KEY = Symbol.for('pilotlight.hint-sink');
type Holder = { [KEY]?: HintSink };

/**
 * Installs the hint sink (the runtime does this). Without one, hints are written to stdout as a
 * JSON line with `"pilotlight":"hint"`, which the watchdog reads from any process it runs.
 */
export function setHintSink(sink: HintSink | undefined): void {
  (globalThis as Holder)[KEY] = sink;
}

function deliver(hint: ScaleHint): void {
  const requestId = invocationStorage.getStore()?.fields.request_id;
  const message = requestId === undefined ? hint : { ...hint, request_id: requestId };
  const sink = (globalThis as Holder)[KEY];
  if (sink) sink(message);
  else process.stdout.write(`${JSON.stringify({ pilotlight: 'hint', ...message })}\n`);
}

/**
 * Scale hints: tell the platform's autoscaler about load it cannot see from outside, without
 * waiting for its next scrape.
 *
 * @example
 * ```ts
 * hints.saturated(true);          // stop sending me work
 * hints.load(queue.length, 'queue');
 * ```
 */
export const hints = {
  /** Says whether this instance is saturated (true) or can take work again (false). */
  saturated(value: boolean): void {
    deliver({ saturated: value });
  },
  /** Reports a load figure of the function's own. */
  load(value: number, metric?: string): void {
    if (!Number.isFinite(value)) throw new TypeError(`hints.load needs a finite number, got ${value}`);
    deliver(metric === undefined ? { load: value } : { load: value, metric });
  },
} as const;
