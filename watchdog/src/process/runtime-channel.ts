import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import type { Socket } from 'node:net';

/** A runtime protocol message: one JSON object per line (docs/runtime-protocol.md). */
export type RuntimeMessage = { readonly type: string; readonly id?: number } & Readonly<Record<string, unknown>>;

/**
 * The watchdog's end of a runtime's control channel (fd 3 of the runtime, a socketpair):
 * newline-delimited JSON, requests matched to replies by `id`.
 */
export class RuntimeChannel extends EventEmitter<{ message: [RuntimeMessage] }> {
  readonly #socket: Socket;
  readonly #pending = new Map<number, (reply: RuntimeMessage) => void>();
  #nextId = 1;

  constructor(child: ChildProcess) {
    super();
    this.#socket = child.stdio[3] as Socket;
    // A dead runtime closes its end: every request still waiting is answered `closed` at once.
    this.#socket.on('error', () => {});
    this.#socket.once('close', () => {
      for (const [id, waiter] of this.#pending) waiter({ type: 'closed', id });
      this.#pending.clear();
    });
    // readline re-emits the socket's errors (ECONNRESET from a killed runtime): unhandled, they
    // would crash the watchdog.
    const lines = createInterface({ input: this.#socket });
    lines.on('error', () => {});
    lines.on('line', (line) => {
      let message: RuntimeMessage;
      try {
        message = JSON.parse(line) as RuntimeMessage;
      } catch {
        return;
      }
      const waiter = message.id === undefined ? undefined : this.#pending.get(message.id);
      if (waiter) {
        this.#pending.delete(message.id as number);
        waiter(message);
      } else {
        this.emit('message', message);
      }
    });
  }

  /** Sends a message without waiting for a reply. */
  send(message: RuntimeMessage): void {
    if (this.#socket.writable) this.#socket.write(`${JSON.stringify(message)}\n`);
  }

  /**
   * Sends a request and resolves with its reply, `{type: "closed"}` if the runtime goes away
   * first, or undefined after `timeoutMs`.
   */
  request(message: Omit<RuntimeMessage, 'id'>, timeoutMs: number): Promise<RuntimeMessage | undefined> {
    const id = this.#nextId++;
    if (this.#socket.destroyed) return Promise.resolve({ type: 'closed', id });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.#pending.set(id, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      this.send({ ...message, id } as RuntimeMessage);
    });
  }

  /** Resolves with the first unsolicited message of `type`, or undefined when the channel closes. */
  next(type: string): Promise<RuntimeMessage | undefined> {
    return new Promise((resolve) => {
      const onMessage = (message: RuntimeMessage) => {
        if (message.type !== type) return;
        this.off('message', onMessage);
        this.#socket.off('close', onClose);
        resolve(message);
      };
      const onClose = () => {
        this.off('message', onMessage);
        resolve(undefined);
      };
      this.on('message', onMessage);
      this.#socket.once('close', onClose);
    });
  }
}
