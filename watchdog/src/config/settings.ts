import { parse as parseShell } from 'shell-quote';
import {
  parseBool,
  parseCount,
  parseDuration,
  parseHeaderValue,
  parseHttpUrl,
  parseInterval,
  parseLineSize,
  parseOneOf,
  parsePath,
  parsePort,
  parseSize,
  parseText,
} from './parsers.js';

/** The ways the watchdog can run a function. */
export const MODES = ['http', 'serializing', 'streaming', 'static'] as const;
/** One of {@link MODES}. */
export type Mode = (typeof MODES)[number];

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** The built-in runtimes, which pre-start and load functions late. */
export const RUNTIMES = ['node', 'python'] as const;
/** One of {@link RUNTIMES}. */
export type RuntimeName = (typeof RUNTIMES)[number];

/**
 * One setting: its `PILOTLIGHT_*` variable, its CLI flag, the other variable names accepted for it
 * (of-watchdog's, platform conventions) in order of precedence, its default and its parser.
 */
export interface Setting<T> {
  readonly env: string;
  readonly flag: string;
  readonly aliases: readonly string[];
  /** Raw default, parsed like any other value; `undefined` leaves the setting unset. */
  readonly default: string | undefined;
  readonly parse: (raw: string) => T;
  /** One sentence for docs/config.md. */
  readonly doc: string;
}

function setting<T, D extends string | undefined>(
  spec: Setting<T> & { readonly default: D },
): Setting<T> & { readonly default: D } {
  return spec;
}

/** Splits a command line into argv without a shell; pipes and redirections are refused. */
function parseCommand(raw: string): readonly string[] {
  const words = parseShell(raw);
  const argv: string[] = [];
  for (const word of words) {
    if (typeof word !== 'string') {
      throw new TypeError(
        'expected a plain command; shell operators (|, &&, >, globs) are not interpreted, ' +
          `wrap the command as sh -c '...' if you need them`,
      );
    }
    argv.push(word);
  }
  if (argv.length === 0) throw new TypeError('expected a command such as "node server.js"');
  return Object.freeze(argv);
}

/**
 * Every setting the watchdog knows, in the order docs/config.md lists them.
 * Keys are the property names of the resulting {@link Config}.
 */
export const SETTINGS = {
  mode: setting({
    env: 'PILOTLIGHT_MODE',
    flag: 'mode',
    aliases: ['mode'],
    default: 'http',
    parse: parseOneOf(MODES),
    doc: 'How the function runs: `http` (a long-lived HTTP server), `serializing` or `streaming` (a process per request), `static` (files).',
  }),
  process: setting({
    env: 'PILOTLIGHT_PROCESS',
    flag: 'process',
    aliases: ['fprocess', 'function_process'],
    default: undefined,
    parse: parseCommand,
    doc: 'The command to run, split like a shell would but without one. Arguments after `--` on the command line replace it.',
  }),
  runtime: setting({
    env: 'PILOTLIGHT_RUNTIME',
    flag: 'runtime',
    aliases: [],
    default: undefined,
    parse: parseOneOf(RUNTIMES),
    doc: 'A built-in runtime (`node`, `python`) to pre-start in `http` mode. Without `function_dir` the instance waits, `generic`, for `POST /_/specialize`.',
  }),
  functionDir: setting({
    env: 'PILOTLIGHT_FUNCTION_DIR',
    flag: 'function',
    aliases: [],
    default: undefined,
    parse: parseText,
    doc: "With a runtime: the function's code, loaded at start (no specialization).",
  }),
  entrypoint: setting({
    env: 'PILOTLIGHT_ENTRYPOINT',
    flag: 'entrypoint',
    aliases: [],
    default: undefined,
    parse: parseText,
    doc: "With `function_dir`: the module (`dist/index.js`) or `file.export` to load; default: package.json's `main`, then `index`.",
  }),
  runtimeCommand: setting({
    env: 'PILOTLIGHT_RUNTIME_COMMAND',
    flag: 'runtime-command',
    aliases: [],
    default: undefined,
    parse: parseCommand,
    doc: "The command that starts the runtime, replacing the built-in one (for a runtime written from docs/runtime-protocol.md).",
  }),
  adminToken: setting({
    env: 'PILOTLIGHT_ADMIN_TOKEN',
    flag: 'admin-token',
    aliases: [],
    default: undefined,
    parse: parseText,
    doc: 'Bearer token `POST /_/specialize` requires. Unset: only loopback callers may specialize. Prefer the variable: flags show in `ps`.',
  }),
  specializeTimeout: setting({
    env: 'PILOTLIGHT_SPECIALIZE_TIMEOUT',
    flag: 'specialize-timeout',
    aliases: [],
    default: '30s',
    parse: parseDuration,
    doc: 'Longest a specialization (fetch, extract, load, initializer) may take before a 504. A runtime still loading is then restarted, an extraction stops and its files are deleted; the instance is generic again. Also bounds loading `function_dir` at start (past it the instance is `failed`).',
  }),
  maxCodeSize: setting({
    env: 'PILOTLIGHT_MAX_CODE_SIZE',
    flag: 'max-code-size',
    aliases: [],
    default: '256MiB',
    parse: parseSize,
    doc: 'Largest code package accepted by specialization, both as downloaded or sent and once extracted.',
  }),
  maxCodeEntries: setting({
    env: 'PILOTLIGHT_MAX_CODE_ENTRIES',
    flag: 'max-code-entries',
    aliases: [],
    default: '20000',
    parse: parseCount,
    doc: 'Most files and folders an archive may hold.',
  }),
  upstreamUrl: setting({
    env: 'PILOTLIGHT_UPSTREAM_URL',
    flag: 'upstream-url',
    aliases: ['upstream_url', 'http_upstream_url'],
    default: undefined,
    parse: parseHttpUrl,
    doc: 'Where the `http` mode process listens; requests are proxied there. A path in it goes in front of every request path (`http://127.0.0.1:3000/api` + `/x` → `/api/x`), as with of-watchdog.',
  }),
  port: setting({
    env: 'PILOTLIGHT_PORT',
    flag: 'port',
    aliases: ['PORT', 'port'],
    default: '8080',
    parse: parsePort,
    doc: 'The port the watchdog serves the function and `/_/` on; 0 picks a free one (logged).',
  }),
  host: setting({
    env: 'PILOTLIGHT_HOST',
    flag: 'host',
    aliases: [],
    default: undefined,
    parse: parseText,
    doc: 'The address to listen on; all interfaces when unset.',
  }),
  execTimeout: setting({
    env: 'PILOTLIGHT_EXEC_TIMEOUT',
    flag: 'exec-timeout',
    aliases: ['exec_timeout'],
    default: '10s',
    parse: parseDuration,
    doc: 'Longest a request may run before it gets a 504 (fork modes kill the process group); 0 disables. `X-Timeout` may shorten it per request.',
  }),
  readTimeout: setting({
    env: 'PILOTLIGHT_READ_TIMEOUT',
    flag: 'read-timeout',
    aliases: ['read_timeout'],
    default: '10s',
    parse: parseDuration,
    doc: 'Longest time to receive a whole request, headers and body (408 past it); 0 disables.',
  }),
  writeTimeout: setting({
    env: 'PILOTLIGHT_WRITE_TIMEOUT',
    flag: 'write-timeout',
    aliases: ['write_timeout'],
    default: '10s',
    parse: parseDuration,
    doc: 'Longest time from a request arriving to its response being written; the connection is cut past it. 0 disables. Must not be below `exec_timeout`.',
  }),
  idleTimeout: setting({
    env: 'PILOTLIGHT_IDLE_TIMEOUT',
    flag: 'idle-timeout',
    aliases: [],
    default: '65s',
    parse: parseDuration,
    doc: 'How long an idle client keep-alive connection stays open. Longer than the 60 s idle timeout of common load balancers, so they close first and never send into a closing socket.',
  }),
  upstreamKeepAlive: setting({
    env: 'PILOTLIGHT_UPSTREAM_KEEPALIVE',
    flag: 'upstream-keepalive',
    aliases: [],
    default: '2s',
    parse: parseDuration,
    doc: "How long an idle connection to the `http` mode upstream is kept for reuse. Keep it below the upstream's own idle timeout (a server's `Keep-Alive: timeout` hint shortens it by itself); only body-less idempotent requests are retried when a reused connection turns out closed.",
  }),
  healthcheckInterval: setting({
    env: 'PILOTLIGHT_HEALTHCHECK_INTERVAL',
    flag: 'healthcheck-interval',
    aliases: ['healthcheck_interval'],
    default: '5s',
    parse: parseInterval,
    doc: 'How often the `http` mode upstream is probed once it is up.',
  }),
  readyPath: setting({
    env: 'PILOTLIGHT_READY_PATH',
    flag: 'ready-path',
    aliases: ['ready_path'],
    default: undefined,
    parse: parsePath,
    doc: 'Upstream path probed with GET for readiness, which must answer 2xx. Unset: `OPTIONS /` is sent and any HTTP answer counts.',
  }),
  maxInflight: setting({
    env: 'PILOTLIGHT_MAX_INFLIGHT',
    flag: 'max-inflight',
    aliases: ['max_inflight'],
    default: '0',
    parse: parseCount,
    doc: 'Most requests served at once; 0 means no limit.',
  }),
  maxQueue: setting({
    env: 'PILOTLIGHT_MAX_QUEUE',
    flag: 'max-queue',
    aliases: [],
    default: '0',
    parse: parseCount,
    doc: 'Requests that may wait for a free slot once `max_inflight` is reached; beyond it a 429 comes at once. 0 behaves like of-watchdog.',
  }),
  queueTimeout: setting({
    env: 'PILOTLIGHT_QUEUE_TIMEOUT',
    flag: 'queue-timeout',
    aliases: [],
    default: '10s',
    parse: parseInterval,
    doc: 'Longest a queued request waits for a slot before it gets a 429.',
  }),
  maxResponseSize: setting({
    env: 'PILOTLIGHT_MAX_RESPONSE_SIZE',
    flag: 'max-response-size',
    aliases: [],
    default: '64MiB',
    parse: parseSize,
    doc: '`serializing` mode: the most a function may write to stdout, which is buffered whole; past it the process is killed and the request answered 500. 0 means no limit. `streaming` mode streams and is never limited.',
  }),
  maxBodySize: setting({
    env: 'PILOTLIGHT_MAX_BODY_SIZE',
    flag: 'max-body-size',
    aliases: [],
    default: '64MiB',
    parse: parseSize,
    doc: 'Largest request body accepted (413 past it); 0 means no limit.',
  }),
  bufferRequestBody: setting({
    env: 'PILOTLIGHT_BUFFER_REQUEST_BODY',
    flag: 'buffer-request-body',
    aliases: ['http_buffer_req_body', 'buffer_http'],
    default: 'false',
    parse: parseBool,
    doc: '`http` mode: read the whole request body before proxying and send it with a Content-Length, for upstreams that cannot take chunked bodies.',
  }),
  contentType: setting({
    env: 'PILOTLIGHT_CONTENT_TYPE',
    flag: 'content-type',
    aliases: ['content_type'],
    default: undefined,
    parse: parseHeaderValue,
    doc: 'Content-Type of fork-mode responses; unset: `application/octet-stream`.',
  }),
  staticPath: setting({
    env: 'PILOTLIGHT_STATIC_PATH',
    flag: 'static-path',
    aliases: ['static_path'],
    default: '/home/app/public',
    parse: parseText,
    doc: '`static` mode: the directory served. Request paths cannot leave it; symbolic links inside it are followed (as nginx and of-watchdog do), so link only to what may be served.',
  }),
  suppressLock: setting({
    env: 'PILOTLIGHT_SUPPRESS_LOCK',
    flag: 'suppress-lock',
    aliases: ['suppress_lock'],
    default: 'false',
    parse: parseBool,
    doc: 'Do not write the OpenFaaS lock file. `/_/health` works either way.',
  }),
  lockFile: setting({
    env: 'PILOTLIGHT_LOCK_FILE',
    flag: 'lock-file',
    aliases: [],
    default: '/tmp/.lock',
    parse: parseText,
    doc: 'Path of the OpenFaaS lock file, present exactly while the instance is ready (one left by an earlier run is removed at start).',
  }),
  gracePeriod: setting({
    env: 'PILOTLIGHT_GRACE_PERIOD',
    flag: 'grace-period',
    aliases: [],
    default: '25s',
    parse: parseDuration,
    doc: "On SIGTERM, the time in-flight requests and then the function's own SIGTERM handling get in all: requests until its last second (its last fifth, if shorter than 5 s), SIGKILL at its end. Keep it below the platform's kill deadline (Kubernetes: 30 s).",
  }),
  drainDelay: setting({
    env: 'PILOTLIGHT_DRAIN_DELAY',
    flag: 'drain-delay',
    aliases: [],
    default: '0s',
    parse: parseDuration,
    doc: 'On SIGTERM, how long new requests are still accepted after readiness turns 503, while the platform stops routing here.',
  }),
  maxRestarts: setting({
    env: 'PILOTLIGHT_MAX_RESTARTS',
    flag: 'max-restarts',
    aliases: [],
    default: '5',
    parse: parseCount,
    doc: '`http` mode: failed restarts in a row (exit before it answered, or within 10 s) before the instance is `failed`.',
  }),
  metricsPort: setting({
    env: 'PILOTLIGHT_METRICS_PORT',
    flag: 'metrics-port',
    aliases: [],
    default: undefined,
    parse: parsePort,
    doc: "A second port serving only `GET /metrics` (of-watchdog serves its metrics on 8081); metrics are always at `/_/metrics` too.",
  }),
  scaleHintUrl: setting({
    env: 'PILOTLIGHT_SCALE_HINT_URL',
    flag: 'scale-hint-url',
    aliases: [],
    default: undefined,
    parse: parseHttpUrl,
    doc: 'Where to POST scale hints (JSON): at once on saturation, on a material change, else as a heartbeat. Unset: hints are only served at `GET /_/scale`.',
  }),
  scaleHintInterval: setting({
    env: 'PILOTLIGHT_SCALE_HINT_INTERVAL',
    flag: 'scale-hint-interval',
    aliases: [],
    default: '30s',
    parse: parseInterval,
    doc: 'Longest time between two pushed hints (the heartbeat).',
  }),
  scaleHintMinInterval: setting({
    env: 'PILOTLIGHT_SCALE_HINT_MIN_INTERVAL',
    flag: 'scale-hint-min-interval',
    aliases: [],
    default: '1s',
    parse: parseDuration,
    doc: 'Shortest time between two hints pushed for a change in load; saturation is pushed at once regardless.',
  }),
  scaleConcurrency: setting({
    env: 'PILOTLIGHT_SCALE_CONCURRENCY',
    flag: 'scale-concurrency',
    aliases: [],
    default: '0',
    parse: parseCount,
    doc: 'Concurrent requests one instance should serve, for scale hints; 0: `max_inflight`, or 100 when that is unlimited.',
  }),
  prefixLogs: setting({
    env: 'PILOTLIGHT_PREFIX_LOGS',
    flag: 'prefix-logs',
    aliases: ['prefix_logs'],
    default: 'true',
    parse: parseBool,
    doc: "Wrap each child output line in a JSON record; false passes the child's lines through untouched.",
  }),
  logBufferSize: setting({
    env: 'PILOTLIGHT_LOG_BUFFER_SIZE',
    flag: 'log-buffer-size',
    aliases: ['log_buffer_size'],
    default: '64KiB',
    parse: parseLineSize,
    doc: 'Longest child output line kept whole, in bytes; longer lines are logged in numbered parts of at most this size (cut between UTF-8 characters), never blocking the child.',
  }),
  logLevel: setting({
    env: 'PILOTLIGHT_LOG_LEVEL',
    flag: 'log-level',
    aliases: [],
    default: 'info',
    parse: parseOneOf(LOG_LEVELS),
    doc: "Level of the watchdog's own log lines.",
  }),
  accessLog: setting({
    env: 'PILOTLIGHT_ACCESS_LOG',
    flag: 'access-log',
    aliases: [],
    default: 'false',
    parse: parseBool,
    doc: 'Log one line per request (method, path, status, duration).',
  }),
  functionName: setting({
    env: 'PILOTLIGHT_FUNCTION_NAME',
    flag: 'function-name',
    aliases: ['K_SERVICE'],
    default: undefined,
    parse: parseText,
    doc: 'Name of the function in logs and `/_/status`; specialization may set it.',
  }),
  instance: setting({
    env: 'PILOTLIGHT_INSTANCE',
    flag: 'instance',
    aliases: ['HOSTNAME'],
    default: 'pilotlight',
    parse: parseText,
    doc: 'Name of this instance in logs and `/_/status`; the pod name on Kubernetes.',
  }),
} as const;

/**
 * `PILOTLIGHT_*` variables the watchdog does not read but passes on: the SDKs and runtimes read
 * them in the function's process. Listed so the unknown-variable check does not refuse them.
 */
export const FUNCTION_VARIABLES: Readonly<Record<string, string>> = {
  PILOTLIGHT_DEBUG: 'true: error responses of the function include the stack (SDKs).',
  PILOTLIGHT_FUNCTION_LOG_LEVEL: "Lowest level the function's logger writes (SDKs); default info.",
  PILOTLIGHT_LOG_FILE: "A file the function's logger writes to instead of stdout (SDKs).",
  PILOTLIGHT_FUNCTION_VERSION: "The function's version in its invocation context (SDKs).",
  PILOTLIGHT_RUNTIME_SOCKET: 'Set by the watchdog for a runtime: the Unix socket to serve on (docs/runtime-protocol.md).',
  PILOTLIGHT_CONTROL_FD: "Set by the watchdog for a runtime: the control channel's descriptor.",
};

type Parsed<S> = S extends Setting<infer T> ? T : never;

/** The validated, frozen configuration the watchdog runs with. */
export type Config = {
  readonly [K in keyof typeof SETTINGS]: (typeof SETTINGS)[K]['default'] extends string
    ? Parsed<(typeof SETTINGS)[K]>
    : Parsed<(typeof SETTINGS)[K]> | undefined;
};
