import { EventEmitter } from 'node:events';
import { Socket } from 'node:net';
import { createInterface } from 'node:readline';

/** A message of the runtime protocol (docs/runtime-protocol.md): one JSON object per line. */
export type Message = { readonly type: string; readonly id?: number } & Record<string, unknown>;

/**
 * The runtime's end of the control channel: a bidirectional stream on an inherited file
 * descriptor (a socketpair the watchdog created), newline-delimited JSON both ways.
 */
export class ControlChannel extends EventEmitter<{ message: [Message]; close: [] }> {
  readonly #socket: Socket;

  constructor(fd: number) {
    super();
    this.#socket = new Socket({ fd, readable: true, writable: true });
    createInterface({ input: this.#socket }).on('line', (line) => {
      // A line that is not a JSON object is skipped, as unknown types are: a watchdog speaking a
      // newer or broken protocol must not crash the runtime (and the function it serves).
      let message: unknown;
      try {
        message = JSON.parse(line);
      } catch {
        return;
      }
      if (typeof message === 'object' && message !== null && typeof (message as Message).type === 'string') this.emit('message', message as Message);
    });
    // A write failing as the watchdog goes away (EPIPE, ECONNRESET) is followed by 'close',
    // which ends the runtime on purpose; unheard, the error would crash it first.
    this.#socket.on('error', () => {});
    this.#socket.on('close', () => this.emit('close'));
  }

  /** Sends one message. */
  send(message: Message): void {
    this.#socket.write(`${JSON.stringify(message)}\n`);
  }
}
