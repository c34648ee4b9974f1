import type { ChildProcess } from 'node:child_process';
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { WatchdogError } from '../errors.js';
import type { Invocation } from '../invocation.js';
import type { TraceContext } from '../tracing.js';
import { type ChildOutputOptions, forwardChildOutput } from '../log/child-output.js';
import { limitBody } from '../proxy/body-limit.js';
import { describeExit, OUTPUT_CLOSE_MS, outputClosed, type Spawn, signalGroup, spawnGroup } from './group.js';

/** What the fork modes need to start a process per request. */
export interface RequestProcessOptions {
  readonly argv: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly spawn: Spawn;
  readonly output: Omit<ChildOutputOptions, 'stream' | 'logger'>;
  readonly maxBodySize: number;
}

/** A process serving one request. */
export interface RequestProcess {
  readonly child: ChildProcess;
  /** Resolves once the process has exited and its output is read to the end. */
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `Content-Type` → `Content_Type`, as Go's canonical header names that of-watchdog uses. */
function envName(header: string): string {
  return header.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase()).replaceAll('-', '_');
}

/**
 * The path percent-decoded, as of-watchdog passes Go's `URL.Path`. Left as sent when it does not
 * decode to UTF-8, or would decode to a NUL, which no environment variable can hold.
 */
function decodePath(path: string): string {
  if (!path.includes('%')) return path;
  try {
    const decoded = decodeURIComponent(path);
    return decoded.includes('\0') ? path : decoded;
  } catch {
    return path;
  }
}

/**
 * The request as environment variables, named as of-watchdog names them, plus `TRACEPARENT`
 * (and `TRACESTATE`) naming the watchdog's span, as OpenTelemetry's env carrier reads them.
 */
export function requestEnv(req: IncomingMessage, base: NodeJS.ProcessEnv, trace: TraceContext): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  const raw = req.rawHeaders;
  const seen = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    const name = `Http_${envName((raw[i] as string).toLowerCase())}`;
    // A repeated header keeps its first value, as in of-watchdog.
    if (seen.has(name)) continue;
    seen.add(name);
    // Node reads header bytes as latin1; the process gets them back as the UTF-8 they were sent as.
    env[name] = Buffer.from(raw[i + 1] as string, 'latin1').toString('utf8');
  }
  const url = req.url ?? '/';
  const query = url.indexOf('?');
  env.Http_Method = req.method;
  env.Http_Path = decodePath(query === -1 ? url : url.slice(0, query));
  // Only the URL sets the query: a header named `Query` must not pose as one.
  if (query !== -1 && query < url.length - 1) env.Http_Query = url.slice(query + 1);
  else delete env.Http_Query;
  env.TRACEPARENT = trace.traceparent;
  if (trace.traceState !== undefined) env.TRACESTATE = trace.traceState;
  return env;
}

/** Message for a process that ended badly, pointing at the logs rather than leaking stderr. */
export function failedExit(code: number | null, signal: NodeJS.Signals | null, requestId: string): WatchdogError {
  return new WatchdogError(
    'PILOTLIGHT_FUNCTION_FAILED',
    `function process ${describeExit(code, signal)}; its stderr is in the logs under request_id ${requestId}`,
  );
}

/**
 * Starts the function's process for one request, in a process group of its own: the request body
 * streams to its stdin, its stderr becomes log lines carrying the request id, and when the
 * request is aborted (timeout, client gone, body too large) the whole group is killed. Once the
 * leader exits, whatever it left running in its group is killed too, so nothing outlives the request.
 */
export function startRequestProcess(
  req: IncomingMessage,
  invocation: Invocation,
  options: RequestProcessOptions,
  logger: Logger,
): RequestProcess {
  const child = spawnGroup(options.spawn, options.argv, requestEnv(req, options.env, invocation.trace), 'pipe');
  const kill = () => signalGroup(child, 'SIGKILL');
  invocation.onAbort(kill);
  child.once('exit', kill);
  // The process may stop reading stdin early (or never start); that is its business, not an error.
  child.stdin!.on('error', () => {});
  forwardChildOutput(child.stderr!, { ...options.output, logger, stream: 'stderr' });
  try {
    const body = limitBody(req, options.maxBodySize);
    body.on('error', (error) => {
      // Past max_body_size: answered 413. Anything else on the request stream is the client's
      // connection breaking (it went away, or the response was cut): nobody is left to answer.
      if (error instanceof WatchdogError) invocation.abort(error);
      else invocation.cancel(error);
    });
    body.pipe(child.stdin!);
    // A process that stops reading (or never starts) leaves the rest of the body unread, and the
    // client, still sending it, would never finish the exchange: what is left is read and dropped.
    // read_timeout and max_body_size still bound it.
    child.stdin!.once('close', () => {
      body.unpipe(child.stdin!);
      body.resume();
    });
  } catch (error) {
    kill();
    throw error;
  }
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      invocation.onAbort(undefined);
      reject(
        new WatchdogError(
          'PILOTLIGHT_SPAWN_FAILED',
          `could not start ${JSON.stringify(options.argv[0])}: ${error.code ?? error.message}; check the process setting`,
        ),
      );
    });
    // The answer waits for the output to be read to its end, but not for a process the function
    // left running in another session with the pipes still open: that one would hold the request
    // (and its concurrency slot) for as long as it lives. What it writes later is dropped.
    child.once('exit', (code, signal) => {
      void outputClosed(child, OUTPUT_CLOSE_MS).then(() => {
        if (!child.stdout?.closed || !child.stderr?.closed) {
          logger.warn(
            { code: 'PILOTLIGHT_OUTPUT_HELD' },
            `the function process ${describeExit(code, signal)} but something it started still holds its stdout or stderr; answering without waiting for it`,
          );
          child.stdout?.destroy();
          child.stderr?.destroy();
        }
        invocation.onAbort(undefined);
        resolve({ code, signal });
      });
    });
  });
  return { child, done };
}
