import { type ServerResponse, STATUS_CODES } from 'node:http';

/**
 * Every error the watchdog itself produces, by stable code. `status` is the HTTP status for errors
 * answered to a client; `null` marks errors that are only logged (or end the process).
 * docs/errors.md lists the same codes; a test keeps the two in step.
 */
export const ERRORS = {
  PILOTLIGHT_CONFIG_INVALID: { status: null, summary: 'A setting is invalid, unknown or missing; the watchdog does not start.' },
  PILOTLIGHT_START_FAILED: { status: null, summary: 'The function could not be started (listen failed, static directory missing, process could not start, upstream_url port already taken); the watchdog exits 1.' },
  PILOTLIGHT_PID1: { status: null, summary: 'The watchdog runs as PID 1 without an init, so abandoned grandchildren of functions cannot be reaped.' },
  PILOTLIGHT_NOT_READY: { status: 503, summary: 'The instance is not ready yet (starting, generic or specializing); retry later.' },
  PILOTLIGHT_FAILED: { status: 503, summary: 'The function process could not be kept running; the instance is `failed` and should be replaced.' },
  PILOTLIGHT_DRAINING: { status: 503, summary: 'The instance is shutting down and takes no new requests.' },
  PILOTLIGHT_OVERLOADED: { status: 429, summary: 'All `max_inflight` slots are busy and the queue is full (or has size 0).' },
  PILOTLIGHT_QUEUE_TIMEOUT: { status: 429, summary: 'The request waited `queue_timeout` for a slot and got none.' },
  PILOTLIGHT_BODY_TOO_LARGE: { status: 413, summary: 'The request body is larger than `max_body_size`.' },
  PILOTLIGHT_BAD_REQUEST: { status: 400, summary: 'The request is not valid HTTP/1.1 (the message has the parser\'s reason); the connection is closed.' },
  PILOTLIGHT_HEADERS_TOO_LARGE: { status: 431, summary: 'The request line and headers are larger than the 16 KiB Node.js allows; the connection is closed.' },
  PILOTLIGHT_BAD_TIMEOUT: { status: 400, summary: 'The `X-Timeout` header is not a duration.' },
  PILOTLIGHT_READ_TIMEOUT: { status: 408, summary: 'The request was not received in full within `read_timeout`.' },
  PILOTLIGHT_EXEC_TIMEOUT: { status: 504, summary: 'The function did not answer within the exec timeout (or `X-Timeout`); fork modes killed its process group.' },
  PILOTLIGHT_WRITE_TIMEOUT: { status: null, summary: 'The response was not written within `write_timeout`; the connection was cut.' },
  PILOTLIGHT_UPSTREAM_UNAVAILABLE: { status: 502, summary: 'The `http` mode upstream refused or dropped the connection.' },
  PILOTLIGHT_UPSTREAM_BAD_RESPONSE: { status: 502, summary: 'The upstream answered with something that is not valid HTTP/1.1; the message says what.' },
  PILOTLIGHT_UPSTREAM_EXITED: { status: 502, summary: 'The `http` mode process exited while the request was in flight; the message names the exit code or signal.' },
  PILOTLIGHT_UPSTREAM_NOT_ANSWERING: { status: null, summary: 'The `http` mode upstream has not answered its readiness probe for 5 s (then every 30 s); the log line says what the last probe got.' },
  PILOTLIGHT_UPSTREAM_UNHEALTHY: { status: null, summary: 'The running `http` mode upstream failed 3 health probes in a row; `/_/health` answers 503 until it answers again.' },
  PILOTLIGHT_UPSTREAM_RESTARTS: { status: null, summary: 'The `http` mode process exited and is being restarted with backoff.' },
  PILOTLIGHT_FUNCTION_FAILED: { status: 500, summary: 'A fork-mode process exited non-zero or by a signal before answering.' },
  PILOTLIGHT_RESPONSE_TOO_LARGE: { status: 500, summary: '`serializing` mode: the function wrote more than `max_response_size` to stdout; its process group was killed.' },
  PILOTLIGHT_SPAWN_FAILED: { status: 500, summary: 'A fork-mode process could not be started (command not found, not executable).' },
  PILOTLIGHT_BAD_SPECIALIZE: { status: 400, summary: 'The `/_/specialize` body is not JSON, names no source or several, or has a field of the wrong type.' },
  PILOTLIGHT_UNAUTHORIZED: { status: 401, summary: 'Specialization without the admin token (or, with none configured, from a non-loopback address).' },
  PILOTLIGHT_NOT_GENERIC: { status: 409, summary: 'The instance is already specialized, has no runtime, or was given its function at start.' },
  PILOTLIGHT_SPECIALIZING: { status: 409, summary: 'Another specialization of this instance is in progress.' },
  PILOTLIGHT_ARCHIVE_UNSAFE: { status: 400, summary: 'The archive has an entry that would escape the target (`..`, an absolute path) or is a link or device.' },
  PILOTLIGHT_ARCHIVE_INVALID: { status: 400, summary: 'The archive cannot be read as the format given, or cannot be laid out as files (a path both a file and a folder, a name too long).' },
  PILOTLIGHT_CODE_TOO_LARGE: { status: 413, summary: 'The code package is larger than `max_code_size` (sent, downloaded or extracted) or has more than `max_code_entries` entries.' },
  PILOTLIGHT_CODE_UNWRITABLE: { status: 500, summary: "The code could not be written under the instance's tmpdir (no space, read-only, no permission); the instance stays generic." },
  PILOTLIGHT_FETCH_FAILED: { status: 422, summary: 'The code `url` could not be fetched (no answer, or a non-2xx status).' },
  PILOTLIGHT_CHECKSUM_MISMATCH: { status: 422, summary: 'The code fetched from `url` does not have the `sha256` given.' },
  PILOTLIGHT_LOAD_FAILED: { status: 422, summary: "The runtime could not load the function; the body has the runtime's `reason` code, message and stack." },
  PILOTLIGHT_SPECIALIZE_TIMEOUT: { status: 504, summary: 'Specialization took longer than `specialize_timeout`; a runtime still loading was restarted, an extraction stopped, and the instance is generic again.' },
  PILOTLIGHT_RUNTIME_NO_HELLO: { status: null, summary: 'The runtime has run for 5 s (then every 30 s) without its `hello` on the control channel; the instance stays `starting`.' },
  PILOTLIGHT_RUNTIME_UNRESPONSIVE: { status: null, summary: 'The runtime stopped answering health pings (user code blocking its event loop); it was restarted.' },
  PILOTLIGHT_HINT_UNDELIVERED: { status: null, summary: 'A scale hint could not be delivered to `scale_hint_url` after retries; logged once per outage.' },
  PILOTLIGHT_LOCK_FILE_FAILED: { status: null, summary: 'The OpenFaaS lock file could not be written or removed; exec probes that read it see the wrong state.' },
  PILOTLIGHT_OUTPUT_HELD: { status: null, summary: 'A fork-mode process exited while something it started still held its output; the request was answered without waiting for it.' },
  PILOTLIGHT_GRACE_EXCEEDED: { status: null, summary: 'At shutdown, requests were still in flight when `grace_period` ran out; they were cut off.' },
  PILOTLIGHT_NOT_FOUND: { status: 404, summary: 'No such `/_/` endpoint, or no such file in `static` mode.' },
  PILOTLIGHT_METHOD_NOT_ALLOWED: { status: 405, summary: 'The `/_/` endpoint or static file does not take this method.' },
  PILOTLIGHT_INTERNAL: { status: 500, summary: 'A bug in the watchdog; the log has the stack.' },
} as const;

/** A stable watchdog error code. */
export type ErrorCode = keyof typeof ERRORS;

/** The response header that marks an error as the watchdog's, not the function's. */
export const ERROR_HEADER = 'x-pilotlight-error';

/** An error the watchdog answers with its own JSON body. */
export class WatchdogError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
    /** Extra fields for the JSON body (a runtime's reason and stack). */
    readonly details: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
    this.name = 'WatchdogError';
  }

  /** The HTTP status this error is answered with. */
  get status(): number {
    return ERRORS[this.code].status ?? 500;
  }
}

/**
 * Answers `error` as JSON with the marking header. Does nothing useful once headers are out:
 * then the only honest signal left is cutting the connection, which the caller decides.
 */
export function sendError(res: ServerResponse, error: WatchdogError, requestId?: string): void {
  if (res.headersSent) {
    res.destroy(error);
    return;
  }
  const body = JSON.stringify({ code: error.code, message: error.message, ...error.details, requestId });
  // The reason phrase too: a writeHead that threw on a bad upstream header has already set its own.
  res.writeHead(error.status, STATUS_CODES[error.status] ?? '', {
    ...error.headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    [ERROR_HEADER]: error.code,
  });
  res.end(body);
}

/**
 * A watchdog error as the bytes of a whole HTTP/1.1 response, for a connection that has no
 * request to answer through (a request that could not be parsed, or not read in time). The
 * connection is closed after it.
 */
export function rawErrorResponse(error: WatchdogError): string {
  const body = JSON.stringify({ code: error.code, message: error.message });
  return (
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\n` +
    `${ERROR_HEADER}: ${error.code}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}
