import type { IncomingMessage } from 'node:http';
import { Transform, type Readable } from 'node:stream';
import { WatchdogError } from '../errors.js';
import { hasBody } from './headers.js';

/** The 413 for a body over `limit` bytes. */
export function bodyTooLarge(limit: number): WatchdogError {
  return new WatchdogError('PILOTLIGHT_BODY_TOO_LARGE', `request body is larger than the limit of ${limit} bytes (max_body_size)`);
}

/** How long a client may go on sending a body nobody reads any more before its connection is cut. */
const LINGER_MS = 2_000;

/**
 * After an answer sent before the request body was read whole (a refusal, or a function that
 * answered early): reads and drops the rest of the body so the client can finish sending, read
 * the answer, and send its next request on the same connection. Left unread, the body would stall
 * a client that writes before it reads, and closing at once would leave its unread bytes in the
 * kernel, which then resets the connection, so a client still writing sees the reset instead of
 * the answer. A body that keeps coming past LINGER_MS has its connection cut.
 */
export function discardUnreadBody(req: IncomingMessage): void {
  // A request refused from its 'request' event is not `complete` yet even without a body.
  if (req.complete || req.destroyed || !hasBody(req)) return;
  // Whatever was reading the body (a runner's pipe) is done with it, and would hold it paused.
  req.unpipe();
  const { socket } = req;
  const cut = setTimeout(() => socket.destroy(), LINGER_MS);
  cut.unref();
  // Both listeners go with the body: the socket may carry many more requests.
  const done = () => {
    clearTimeout(cut);
    req.off('end', done);
    socket.off('close', done);
  };
  req.once('end', done);
  socket.once('close', done);
  req.resume();
}

/**
 * Checks a request body against `limit` (0: none). A declared Content-Length is checked before
 * anything is read; a chunked body is counted as it streams and fails with the 413 error the
 * moment it passes the limit. Returns the stream to read the body from.
 */
export function limitBody(req: IncomingMessage, limit: number): Readable {
  if (limit === 0) return req;
  const declared = req.headers['content-length'];
  if (declared !== undefined) {
    // Node's parser already holds the body to exactly the declared length.
    if (Number(declared) > limit) throw bodyTooLarge(limit);
    return req;
  }
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > limit) callback(bodyTooLarge(limit));
      else callback(null, chunk);
    },
  });
  req.on('error', (error) => counter.destroy(error));
  // Whoever reads the body listens for its errors while reading; a client that goes away after
  // that (an exchange already answered) must not become an unhandled 'error' that ends the watchdog.
  counter.on('error', () => {});
  return req.pipe(counter);
}
