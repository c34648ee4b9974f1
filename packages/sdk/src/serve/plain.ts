import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { logger } from '@pilotlight/logger';
import { currentContext, type InvocationContext } from '../context.js';
import { sendThrown } from './errors.js';

/**
 * A plain function: a Web `Request` and the invocation context in; out a `Response`, or a value
 * mapped to one — string → text, Buffer → bytes, stream → streamed bytes, null → 204,
 * anything else → JSON. It may be async.
 */
export type PlainHandler = (request: Request, context: InvocationContext) => unknown;

function toWebRequest(req: IncomingMessage): Request {
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i] as string, raw[i + 1] as string);
  const host = req.headers.host ?? 'localhost';
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  return new Request(`http://${host}${req.url}`, {
    method: req.method,
    headers,
    body: hasBody ? (Readable.toWeb(req) as ReadableStream) : null,
    duplex: 'half',
  } as RequestInit);
}

/** Headers that describe one connection, not the response: never passed on (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
/** The content codings `fetch` decodes: the body it hands over is no longer in them. */
const FETCH_DECODES = new Set(['gzip', 'x-gzip', 'deflate', 'br']);

/**
 * The headers to write for a returned `Response`. A function that returns what `fetch` gave it
 * (a common proxy) hands over a body `fetch` already decoded, under the `Content-Encoding` and
 * `Content-Length` of the encoded bytes: written as they are, the length would cut the body or
 * leave its rest on the connection as garbage, and the client would try to decode plain bytes.
 * Those two go when `fetch` decoded; hop-by-hop headers go always.
 */
function responseHeaders(result: Response): Record<string, string | string[]> {
  const encoding = result.headers.get('content-encoding');
  // A Response the function built itself has type "default"; one from fetch does not.
  const decoded =
    result.type !== 'default' &&
    encoding !== null &&
    encoding.split(',').every((coding) => FETCH_DECODES.has(coding.trim().toLowerCase()));
  const headers: Record<string, string | string[]> = {};
  result.headers.forEach((value, name) => {
    if (HOP_BY_HOP.has(name) || (decoded && (name === 'content-encoding' || name === 'content-length'))) return;
    headers[name] = name === 'set-cookie' ? result.headers.getSetCookie() : value;
  });
  return headers;
}

/** Writes what a plain function returned, mapped as {@link PlainHandler} says. */
export async function writeResult(res: ServerResponse, result: unknown): Promise<void> {
  if (result instanceof Response) {
    res.writeHead(result.status, responseHeaders(result));
    if (result.body) await pipeline(Readable.fromWeb(result.body as never), res);
    else res.end();
    return;
  }
  if (result === undefined || result === null) {
    res.writeHead(204).end();
  } else if (typeof result === 'string') {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(result) }).end(result);
  } else if (result instanceof Uint8Array) {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': result.byteLength }).end(result);
  } else if (result instanceof Readable || result instanceof ReadableStream) {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    await pipeline(result instanceof Readable ? result : Readable.fromWeb(result as never), res);
  } else {
    const body = JSON.stringify(result);
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) }).end(body);
  }
}

/** Serves a plain function over node:http; the request must run inside an invocation. */
export function plainListener(handler: PlainHandler): RequestListener {
  return (req, res) => {
    const context = currentContext() as InvocationContext;
    Promise.resolve()
      .then(() => handler(toWebRequest(req), context))
      .then((result) => writeResult(res, result))
      .catch((error: unknown) => {
        const log = context?.logger ?? logger;
        // The connection closing under a streamed body (the client left, the deadline passed)
        // ends it early: worth a line, but not the function failing.
        if (res.destroyed && !res.writableFinished && (error as NodeJS.ErrnoException)?.code === 'ERR_STREAM_PREMATURE_CLOSE') {
          log.info('the response was cut short: its connection closed before the body was complete');
          return;
        }
        sendThrown(res, error, log);
      });
  };
}
