import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

/** The real container entrypoint. */
export const PILOTLIGHT_BIN = fileURLToPath(new URL('../../watchdog/bin/pilotlight.js', import.meta.url));
/** Folder of small programs the tests run as functions. */
export const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

/** A JSON log line the watchdog wrote. */
export type LogRecord = Record<string, unknown> & { msg?: string; level?: string };

/** A running `pilotlight` process under test. */
export interface RunningWatchdog {
  readonly process: ChildProcess;
  readonly port: number;
  readonly url: string;
  /** Every JSON line written so far (non-JSON lines land in `rawLines`). */
  readonly logs: LogRecord[];
  readonly rawLines: string[];
  /** Resolves with the first log record matching `predicate`, waiting for it if needed. */
  waitForLog(predicate: (record: LogRecord) => boolean, timeoutMs?: number): Promise<LogRecord>;
  /** Resolves once `/_/status` reports `state`. */
  waitForState(state: string, timeoutMs?: number): Promise<void>;
  /** Resolves with the exit code and signal once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Stops the process if it still runs: SIGTERM, then SIGKILL after 5 s. */
  kill(): Promise<void>;
}

/** Options for {@link startWatchdog}. */
export interface StartOptions {
  /** Extra environment; `PILOTLIGHT_PORT` defaults to 0 and `PILOTLIGHT_HOST` to 127.0.0.1. */
  env?: Record<string, string | undefined>;
  args?: string[];
  /** Wait until the state is ready (default) or only until listening. */
  waitFor?: 'ready' | 'listening' | 'nothing';
  cwd?: string;
}

/** Finds a free TCP port on loopback (for upstreams the watchdog starts). */
/**
 * Where this test worker's ports come from: a block of its own (vitest numbers its workers
 * from 1), below the kernel's ephemeral range (32768 and up), which every port-0 listener and
 * every outgoing connection draws from. A port the kernel picked could be picked again for
 * another worker's process between being found free and being bound; once, that handed one
 * test's upstream port to another test's server.
 */
const PORT_BLOCK = 1_000;
const FIRST_PORT = 20_000 + ((Number(process.env.VITEST_POOL_ID ?? 1) - 1) % 10) * PORT_BLOCK;
let nextPort = FIRST_PORT;

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port free on 127.0.0.1, for a process the test starts next (an upstream, a receiver). */
export async function freePort(): Promise<number> {
  for (let tried = 0; tried < PORT_BLOCK; tried++) {
    const port = nextPort;
    nextPort = FIRST_PORT + ((nextPort - FIRST_PORT + 1) % PORT_BLOCK);
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port in ${FIRST_PORT}-${FIRST_PORT + PORT_BLOCK - 1}`);
}

const running = new Set<RunningWatchdog>();

/** Stops every watchdog still running; call from `afterEach`/`afterAll`. */
export async function killAll(): Promise<void> {
  await Promise.all([...running].map((w) => w.kill()));
}

/**
 * Starts the real `pilotlight` binary on a free port with a clean environment (no PILOTLIGHT_*
 * or of-watchdog variables leaking in from the shell) and follows its JSON log.
 */
export async function startWatchdog(options: StartOptions = {}): Promise<RunningWatchdog> {
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    PILOTLIGHT_PORT: '0',
    PILOTLIGHT_HOST: '127.0.0.1',
    PILOTLIGHT_SUPPRESS_LOCK: 'true',
    ...options.env,
  };
  const child = spawn(process.execPath, [PILOTLIGHT_BIN, ...(options.args ?? [])], {
    env: env as NodeJS.ProcessEnv,
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogRecord[] = [];
  const rawLines: string[] = [];
  const waiters = new Set<{ predicate: (r: LogRecord) => boolean; resolve: (r: LogRecord) => void }>();
  const onLine = (line: string) => {
    let record: LogRecord | undefined;
    try {
      record = JSON.parse(line) as LogRecord;
    } catch {
      rawLines.push(line);
      return;
    }
    logs.push(record);
    for (const waiter of waiters) {
      if (waiter.predicate(record)) {
        waiters.delete(waiter);
        waiter.resolve(record);
      }
    }
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', (line) => rawLines.push(line));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });

  const waitForLog = (predicate: (r: LogRecord) => boolean, timeoutMs = 10_000) => {
    const found = logs.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise<LogRecord>((resolve, reject) => {
      const waiter = { predicate, resolve };
      waiters.add(waiter);
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`no matching log line within ${timeoutMs} ms; log so far:\n${logs.map((l) => JSON.stringify(l)).join('\n')}\n${rawLines.join('\n')}`));
      }, timeoutMs);
      exited.then(() => setTimeout(() => {
        if (!waiters.has(waiter)) return;
        waiters.delete(waiter);
        clearTimeout(timer);
        reject(new Error(`watchdog exited before the expected log line; log:\n${logs.map((l) => JSON.stringify(l)).join('\n')}\n${rawLines.join('\n')}`));
      }, 50));
    });
  };

  let port = 0;
  if (options.waitFor !== 'nothing') {
    const listening = await waitForLog((r) => r.msg?.startsWith('listening on port') === true);
    port = listening.port as number;
  }
  const url = `http://127.0.0.1:${port}`;
  const waitForState = async (state: string, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = (await fetch(`${url}/_/status`).then((r) => r.json())) as { state: string };
      if (status.state === state) return;
      if (Date.now() > deadline) throw new Error(`state is ${status.state}, expected ${state}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const watchdog: RunningWatchdog = {
    process: child,
    port,
    url,
    logs,
    rawLines,
    waitForLog,
    waitForState,
    exited,
    kill: async () => {
      running.delete(watchdog);
      if (child.exitCode === null && child.signalCode === null) {
        // SIGTERM first: the watchdog stops its process groups; a SIGKILL would orphan them.
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      await exited;
    },
  };
  running.add(watchdog);
  if ((options.waitFor ?? 'ready') === 'ready') await waitForLog((r) => r.state === 'ready');
  return watchdog;
}
