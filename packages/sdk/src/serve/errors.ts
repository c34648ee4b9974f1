import type { ServerResponse } from 'node:http';
import type { Logger } from '@pilotlight/logger';

/**
 * The status of a thrown error. Read from `httpCode`/`status` rather than by `instanceof`, so an
 * error class from another copy of routing-controllers or Koa keeps its status too.
 */
export function statusOf(error: unknown): number {
  const e = error as { httpCode?: unknown; status?: unknown; expose?: unknown };
  const status = typeof e?.httpCode === 'number' ? e.httpCode : typeof e?.status === 'number' ? e.status : 500;
  return status >= 400 && status <= 599 ? status : 500;
}

/**
 * The response for a thrown error: HTTP errors keep their status and message; anything else is a
 * 500 whose body never carries the stack or message (the log does), unless PILOTLIGHT_DEBUG is set.
 * Logs 5xx errors with their stack.
 */
export function describeThrown(error: unknown, logger: Logger): { status: number; body: string } {
  const status = statusOf(error);
  const err = error as Error;
  if (status >= 500) logger.error({ err }, `function failed: ${err?.message ?? String(error)}`);
  const debug = process.env.PILOTLIGHT_DEBUG === 'true';
  const hide = status >= 500 && !debug;
  const body = JSON.stringify({
    name: hide ? 'InternalServerError' : (err?.name ?? 'Error'),
    message: hide ? 'the function failed; see its logs' : (err?.message ?? String(error)),
    // Validation failures (routing-controllers' BadRequestError) say which fields were wrong.
    ...(!hide && Array.isArray((error as { errors?: unknown }).errors) ? { errors: (error as { errors: unknown[] }).errors } : {}),
    ...(debug ? { stack: err?.stack } : {}),
  });
  return { status, body };
}

/** Answers a thrown error on a raw response (see {@link describeThrown}). */
export function sendThrown(res: ServerResponse, error: unknown, logger: Logger): void {
  const { status, body } = describeThrown(error, logger);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) }).end(body);
}
