import { connect, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import type { Readable } from 'node:stream';
import { sameName } from './header-name.js';
import { type ParsedHead, ResponseParser } from './response-parser.js';

/** Where the upstream listens: a Unix socket path, or TCP host and port (with TLS for an https:// upstream). */
export type UpstreamTarget = { readonly path: string } | { readonly host: string; readonly port: number; readonly tls: boolean };

/** One request to send: head fields and a body that is streamed, sent whole, or absent. */
export interface OutgoingRequest {
  readonly method: string;
  readonly path: string;
  /** Flat `[name, value, …]`, already free of hop-by-hop headers. */
  readonly headers: readonly string[];
  readonly body: Readable | Buffer | null;
}

/** Receives one exchange's response. Exactly one of `onComplete` and `onError` ends it. */
export interface ExchangeHandler {
  onHead(head: ParsedHead): void;
  /** A body chunk, `last` if the framing says it ends the body; false asks for backpressure until `resume()`. */
  onBody(chunk: Buffer, last: boolean): boolean;
  onComplete(): void;
  onError(error: Error): void;
}

/** How long a new connection may take to connect. */
const CONNECT_TIMEOUT_MS = 2_000;
const LAST_CHUNK = '0\r\n\r\n';

/**
 * One kept-alive HTTP/1.1 connection to the upstream, carrying one exchange at a time (no
 * pipelining). After a complete exchange that leaves it reusable, it hands itself back through
 * `release`; otherwise it closes.
 */
export class UpstreamConnection {
  readonly #socket: Socket;
  readonly #parser = new ResponseParser();
  readonly #release: (connection: UpstreamConnection) => void;
  readonly #host: string;
  #handler: ExchangeHandler | undefined;
  #body: Readable | undefined;
  #detachBody: (() => void) | undefined;
  #requestSent = false;
  #error: Error | undefined;
  /** Exchanges this connection completed; above 0 it is a reused connection. */
  served = 0;
  /** When it last became idle (performance.now()), and how long it may stay idle, ms. */
  idleSince = 0;
  idleLimit: number;

  constructor(target: UpstreamTarget, idleLimit: number, release: (connection: UpstreamConnection) => void, gone: (connection: UpstreamConnection) => void) {
    this.idleLimit = idleLimit;
    this.#release = release;
    this.#host = 'path' in target ? 'localhost' : `${target.host}:${target.port}`;
    const socket =
      'path' in target
        ? connect(target.path)
        : target.tls
          ? connectTls({ host: target.host, port: target.port, servername: target.host })
          : connect(target.port, target.host);
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' })));
    socket.once('connect', () => socket.setTimeout(0));
    socket.on('data', (data: Buffer) => {
      if (!this.#handler) {
        // Bytes nobody asked for: the connection's framing can no longer be trusted.
        socket.destroy();
        return;
      }
      try {
        this.#parser.execute(data);
      } catch (error) {
        this.#fail(error as Error);
        return;
      }
      if (this.#parser.extraData) socket.destroy();
    });
    socket.on('drain', () => this.#body?.resume());
    socket.on('error', (error) => {
      this.#error ??= error;
    });
    socket.on('close', () => {
      if (this.#handler) {
        try {
          // A reset is not an end: a close-delimited body cut by one must not pass for complete.
          if (this.#error) throw this.#error;
          this.#parser.finish();
        } catch (error) {
          this.#fail(this.#error ?? (error as Error));
        }
      }
      gone(this);
    });
  }

  /** The connection is open and between exchanges. */
  get usable(): boolean {
    return !this.#socket.destroyed && this.#handler === undefined;
  }

  /** Sends `request` and reports its response to `handler`. */
  send(request: OutgoingRequest, handler: ExchangeHandler): void {
    this.#handler = handler;
    this.#requestSent = false;
    this.#parser.reset(request.method, {
      onHead: (head) => {
        const hint = head.keepAliveHint;
        // Stop reusing a connection a second before the upstream's announced idle timeout.
        if (hint !== undefined) this.idleLimit = Math.min(this.idleLimit, hint * 1000 - 1000);
        this.#handler?.onHead(head);
      },
      onBody: (chunk, last) => {
        if (this.#handler?.onBody(chunk, last) === false) this.#socket.pause();
      },
      onComplete: () => this.#responseComplete(),
    });
    const { body } = request;
    let head = `${request.method} ${request.path} HTTP/1.1\r\n`;
    let hasHost = false;
    let hasLength = false;
    const { headers } = request;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i] as string;
      if (sameName(name, 'host')) hasHost = true;
      else if (sameName(name, 'content-length')) hasLength = true;
      head += `${name}: ${headers[i + 1]}\r\n`;
    }
    if (!hasHost) head += `host: ${this.#host}\r\n`;
    if (body === null) {
      this.#socket.write(`${head}\r\n`, 'latin1');
      this.#requestSent = true;
    } else if (Buffer.isBuffer(body)) {
      if (!hasLength) head += `content-length: ${body.length}\r\n`;
      this.#socket.cork();
      this.#socket.write(`${head}\r\n`, 'latin1');
      this.#socket.write(body);
      this.#socket.uncork();
      this.#requestSent = true;
    } else {
      if (!hasLength) head += 'transfer-encoding: chunked\r\n';
      this.#socket.write(`${head}\r\n`, 'latin1');
      this.#stream(body, !hasLength);
    }
  }

  /** Lets the response body flow again after `onBody` returned false. */
  resume(): void {
    this.#socket.resume();
  }

  /** Ends the exchange in progress with `reason` and closes the connection. */
  abort(reason: Error): void {
    this.#fail(reason);
  }

  /** Closes the connection; any exchange in progress fails. */
  close(): void {
    this.#fail(new Error('connection closed by the watchdog'));
  }

  /** Streams a request body, framed by its Content-Length or chunked, with backpressure. */
  #stream(body: Readable, chunked: boolean): void {
    const socket = this.#socket;
    this.#body = body;
    const onData = (chunk: Buffer) => {
      let flowing: boolean;
      if (chunked) {
        socket.cork();
        socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
        socket.write(chunk);
        flowing = socket.write('\r\n', 'latin1');
        socket.uncork();
      } else {
        flowing = socket.write(chunk);
      }
      if (!flowing) body.pause();
    };
    const onEnd = () => {
      detach();
      if (chunked) socket.write(LAST_CHUNK, 'latin1');
      this.#requestSent = true;
    };
    const onError = (error: Error) => {
      detach();
      this.#fail(error);
    };
    const detach = () => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      this.#body = undefined;
      this.#detachBody = undefined;
    };
    this.#detachBody = detach;
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
  }

  #responseComplete(): void {
    const handler = this.#handler;
    if (!handler) return;
    // An upstream may answer before it has read the whole request body; the answer goes out
    // at once, and a connection with a body half sent cannot carry another exchange.
    const reusable = this.#requestSent && this.#parser.reusable && this.idleLimit > 0 && !this.#socket.destroyed;
    this.#handler = undefined;
    this.#detachBody?.();
    if (reusable) {
      // Backpressure belonged to this exchange's client; idle, the socket must read again so
      // the upstream closing it is noticed.
      this.#socket.resume();
      this.served += 1;
      this.idleSince = performance.now();
      this.#release(this);
    } else {
      this.#socket.destroy();
    }
    handler.onComplete();
  }

  #fail(error: Error): void {
    const handler = this.#handler;
    this.#handler = undefined;
    this.#detachBody?.();
    this.#socket.destroy();
    handler?.onError(error);
  }
}
