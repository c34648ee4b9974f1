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
      if (line.trim() === '') return;
      this.emit('message', JSON.parse(line) as Message);
    });
    this.#socket.on('close', () => this.emit('close'));
  }

  /** Sends one message. */
  send(message: Message): void {
    this.#socket.write(`${JSON.stringify(message)}\n`);
  }
}
