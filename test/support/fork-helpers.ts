import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, PILOTLIGHT_BIN, type LogRecord } from './watchdog.js';

/** Absolute path of a fixture under test/fixtures. */
export function fixture(name: string): string {
  return join(FIXTURES, name);
}

/**
 * A marker unique to one test, usable as a `sleep` duration (`300.<random>`), so the processes a
 * test starts can be told apart from everything else on the machine by their command line.
 */
export function uniqueMarker(): string {
  return `300.${process.pid}${Math.floor(Math.random() * 1e6)}`;
}

/** A fresh temporary directory; removed by the returned cleanup. */
export function tempDir(prefix = 'pilotlight-test-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** One process as /proc shows it. */
export interface ProcInfo {
  pid: number;
  ppid: number;
  /** Single-letter state: R, S, D, Z, T, … */
  state: string;
  /** argv; empty for zombies and kernel threads. */
  args: string[];
}

function readProc(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may itself contain spaces or parentheses.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
    return { pid, ppid: Number(rest[1]), state: rest[0] as string, args };
  } catch {
    // The process went away between listing and reading: it does not exist for our purposes.
    return undefined;
  }
}

/** Every process on the machine, read from /proc (no `ps` child to filter out of the result). */
export function listProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const info = readProc(Number(name));
    if (info) out.push(info);
  }
  return out;
}

/** The process with this pid, if it exists (zombies included). */
export function processInfo(pid: number): ProcInfo | undefined {
  return readProc(pid);
}

/** Live (non-zombie) processes with `marker` in one of their arguments. */
export function processesWithMarker(marker: string): ProcInfo[] {
  return listProcesses().filter((p) => p.state !== 'Z' && p.args.some((a) => a.includes(marker)));
}

/**
 * SIGKILLs, by pid, the live processes carrying `marker`: the test's own processes, left over
 * only when the watchdog failed to kill them, so a failing test does not leave `sleep 300`s behind.
 */
export function killMarked(marker: string): void {
  for (const { pid } of processesWithMarker(marker)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/** Zombies whose parent is `ppid`, i.e. children that process has not reaped. */
export function zombiesOf(ppid: number): ProcInfo[] {
  return listProcesses().filter((p) => p.state === 'Z' && p.ppid === ppid);
}

/**
 * Polls `check` until it returns true or `timeoutMs` passes, then returns its last answer.
 * Used for conditions that become true eventually (a killed process being reaped), never to
 * measure how fast something happens.
 */
export async function eventually(check: () => boolean, timeoutMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** What {@link runCli} saw. */
export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout lines parsed as JSON (lines that are not JSON are skipped). */
  records: LogRecord[];
}

/**
 * Runs the real binary to completion with a clean environment (nothing from the test's shell),
 * for invocations expected to exit on their own: bad configuration, --help, --version.
 * A run still going after `timeoutMs` is killed, so a config that wrongly starts cannot hang the suite.
 */
export function runCli(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 10_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PILOTLIGHT_BIN, ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, PILOTLIGHT_PORT: '0', PILOTLIGHT_HOST: '127.0.0.1', PILOTLIGHT_SUPPRESS_LOCK: 'true', ...env } as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const records: LogRecord[] = [];
      for (const line of stdout.split('\n')) {
        try {
          records.push(JSON.parse(line) as LogRecord);
        } catch {
          // Non-JSON output (help text, version) is checked through `stdout`.
        }
      }
      resolve({ code, signal, stdout, stderr, records });
    });
  });
}

/** A response read with node:http, or how it broke. */
export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Set when the response did not arrive complete (connection cut mid-body). */
  error?: Error;
}

/**
 * Sends a request with node:http, which (unlike fetch) sends the path exactly as given (no
 * `..` normalisation) and sends a body without Content-Length as chunked.
 * `chunks` are written one by one; with `keepOpen` the body is never ended, as from a client still
 * uploading. The response is read whether or not the body finished.
 */
export function rawRequest(
  url: string,
  options: { method?: string; path: string; headers?: Record<string, string>; chunks?: Buffer[]; keepOpen?: boolean },
): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, method: options.method ?? 'GET', path: options.path, headers: options.headers });
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      const done = (error?: Error) => {
        const result: RawResponse = { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) };
        if (error) result.error = error;
        // The server may have answered before the body was all sent (413); stop sending.
        req.destroy();
        resolve(result);
      };
      res.once('end', () => done(res.complete ? undefined : new Error('response incomplete')));
      res.once('error', (error) => done(error));
      res.once('aborted', () => done(new Error('response aborted')));
    });
    req.on('error', reject);
    for (const chunk of options.chunks ?? []) req.write(chunk);
    if (!options.keepOpen) req.end();
  });
}
