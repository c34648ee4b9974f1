import { type ServerResponse, STATUS_CODES, validateHeaderName, validateHeaderValue } from 'node:http';
import type { Logger } from '@pilotlight/logger';

interface HttpErrorShape {
  httpCode?: unknown;
  status?: unknown;
  statusCode?: unknown;
  expose?: unknown;
  headers?: unknown;
}

/**
 * The status of a thrown error. Read from `httpCode` (routing-controllers), then `status` or
 * `statusCode` (http-errors, Koa's `ctx.throw`, Express's convention) rather than by `instanceof`,
 * so an error class from another copy of routing-controllers or Koa keeps its status too.
 */
export function statusOf(error: unknown): number {
  const e = error as HttpErrorShape | undefined;
  const status =
    typeof e?.httpCode === 'number' ? e.httpCode : typeof e?.status === 'number' ? e.status : typeof e?.statusCode === 'number' ? e.statusCode : 500;
  return status >= 400 && status <= 599 ? status : 500;
}

/**
 * Whether an error was made to be answered to the client as it is: routing-controllers' HTTP
 * errors, and http-errors' with `expose` (Koa's `ctx.throw` of a 4xx). An error that merely
 * carries a status (an HTTP client's, about some other service's answer) keeps the status, as Koa
 * and Express keep it, but not its message.
 */
function meantForClient(error: unknown): boolean {
  const e = error as HttpErrorShape | undefined;
  return typeof e?.httpCode === 'number' || e?.expose === true;
}

/**
 * The response for a thrown error: HTTP errors keep their status and message; anything else is a
 * 500 whose body never carries the stack or message (the log does), unless PILOTLIGHT_DEBUG is set.
 * Logs 5xx errors with their stack, and 4xx errors not meant for the client as warnings: a status
 * an HTTP client's error brought along would otherwise reach the caller with nothing in the log.
 */
export function describeThrown(error: unknown, logger: Logger): { status: number; body: string } {
  const status = statusOf(error);
  const err = error as Error;
  const message = err?.message ?? String(error);
  const exposed = status < 500 && meantForClient(error);
  if (status >= 500) logger.error({ err }, `function failed: ${message}`);
  else if (!exposed) logger.warn({ err, status }, `function failed with an error carrying status ${status}, answered as such: ${message}`);
  const debug = process.env.PILOTLIGHT_DEBUG === 'true';
  const body = JSON.stringify({
    name: exposed || debug ? (err?.name ?? 'Error') : status >= 500 ? 'InternalServerError' : 'Error',
    message: exposed || debug ? message : status >= 500 ? 'the function failed; see its logs' : STATUS_CODES[status],
    // Validation failures (routing-controllers' BadRequestError) say which fields were wrong.
    ...((exposed || debug) && Array.isArray((error as { errors?: unknown }).errors) ? { errors: (error as { errors: unknown[] }).errors } : {}),
    ...(debug ? { stack: err?.stack } : {}),
  });
  return { status, body };
}

/**
 * The headers a thrown error asks for (`headers` of http-errors: `Retry-After`,
 * `WWW-Authenticate`). One that could not be written (not a string or number, or with characters
 * a header cannot carry) is left out: the error is answered all the same.
 */
export function headersOf(error: unknown): Record<string, string> {
  const headers = (error as HttpErrorShape | undefined)?.headers;
  const out: Record<string, string> = {};
  if (headers === null || typeof headers !== 'object') return out;
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== 'string' && typeof value !== 'number') continue;
    try {
      validateHeaderName(name);
      validateHeaderValue(name, String(value));
    } catch {
      continue;
    }
    out[name.toLowerCase()] = String(value);
  }
  return out;
}

/** Answers a thrown error on a raw response (see {@link describeThrown}). */
export function sendThrown(res: ServerResponse, error: unknown, logger: Logger): void {
  const { status, body } = describeThrown(error, logger);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res
    .writeHead(status, { ...headersOf(error), 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) })
    .end(body);
}
