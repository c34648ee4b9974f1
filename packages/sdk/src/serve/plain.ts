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

/** Writes what a plain function returned, mapped as {@link PlainHandler} says. */
export async function writeResult(res: ServerResponse, result: unknown): Promise<void> {
  if (result instanceof Response) {
    const headers: Record<string, string | string[]> = {};
    result.headers.forEach((value, name) => {
      headers[name] = name === 'set-cookie' ? result.headers.getSetCookie() : value;
    });
    res.writeHead(result.status, headers);
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
      .catch((error: unknown) => sendThrown(res, error, context?.logger ?? logger));
  };
}
