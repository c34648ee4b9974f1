import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';

/** The instance states of DESIGN.md, in the order an instance normally passes them. */
export type State = 'starting' | 'generic' | 'specializing' | 'ready' | 'draining' | 'failed';

/**
 * The instance's current state. Transitions are logged, and listeners (the lock file, later the
 * scale hints) hear them through the `change` event.
 */
export class Lifecycle extends EventEmitter<{ change: [State, State] }> {
  #state: State = 'starting';

  constructor(private readonly logger: Logger) {
    super();
  }

  /** The current state. */
  get state(): State {
    return this.#state;
  }

  /** Moves to `next`; `draining` and `failed` are final and ignore later moves. */
  set(next: State, reason?: string): void {
    const previous = this.#state;
    if (previous === next || previous === 'draining' || (previous === 'failed' && next !== 'draining')) return;
    this.#state = next;
    this.logger.info({ state: next, previous, reason }, `instance is ${next}`);
    this.emit('change', next, previous);
  }
}
