import type { IncomingMessage } from 'node:http';
import { Transform, type Readable } from 'node:stream';
import { WatchdogError } from '../errors.js';

/** The 413 for a body over `limit` bytes. */
export function bodyTooLarge(limit: number): WatchdogError {
  return new WatchdogError(
    'PILOTLIGHT_BODY_TOO_LARGE',
    `request body is larger than the limit of ${limit} bytes (max_body_size)`,
    { connection: 'close' },
  );
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
  return req.pipe(counter);
}
