import { type ChildProcess, spawn as nodeSpawn, type SpawnOptions } from 'node:child_process';

/** Starts a process; injected so tests can drive supervision without real children. */
export type Spawn = (command: string, args: readonly string[], options: SpawnOptions) => ChildProcess;

/** Node's own spawn. */
export const defaultSpawn: Spawn = (command, args, options) => nodeSpawn(command, args, options);

/**
 * Starts `argv` as the leader of a new process group, so the group can be signalled as a whole and
 * nothing it forks outlives it. stdin is a pipe only when the caller will feed it; a control
 * channel is a fourth descriptor (fd 3), a socketpair both sides can read and write.
 */
export function spawnGroup(
  spawn: Spawn,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  stdin: 'pipe' | 'ignore',
  controlChannel = false,
): ChildProcess {
  const [command, ...args] = argv as [string, ...string[]];
  const stdio: ('pipe' | 'ignore')[] = controlChannel ? [stdin, 'pipe', 'pipe', 'pipe'] : [stdin, 'pipe', 'pipe'];
  return spawn(command, args, { detached: true, env, stdio });
}

/** Signals every process in `child`'s group; a group that is already gone is not an error. */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** How a process ended, for logs and error messages. */
export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code}`;
}

/** Longest wait for a stopped child's output pipes to close (only an escaped descendant delays it). */
export const OUTPUT_CLOSE_MS = 1_000;

/**
 * Resolves once `child`'s stdout and stderr have closed, so every line it wrote before exiting has
 * been read and logged. A process's exit is reported before its pipes are drained; a watchdog
 * exiting at that point loses the last lines (a runtime's shutdown log) still in the pipe.
 */
export function outputClosed(child: ChildProcess, capMs: number): Promise<void> {
  const open = [child.stdout, child.stderr].filter((stream) => stream !== null && !stream.closed);
  if (open.length === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, capMs);
    let left = open.length;
    for (const stream of open) {
      stream!.once('close', () => {
        left -= 1;
        if (left === 0) {
          clearTimeout(timer);
          resolve();
        }
      });
    }
  });
}

/**
 * Sends SIGTERM to the group, then SIGKILL if the leader has not exited within `graceMs`.
 * Resolves once the leader has exited and its output has been read.
 */
export function stopGroup(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    signalGroup(child, 'SIGKILL');
    return outputClosed(child, OUTPUT_CLOSE_MS);
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      // Anything the leader left behind in its group goes with it.
      signalGroup(child, 'SIGKILL');
      void outputClosed(child, OUTPUT_CLOSE_MS).then(resolve);
    });
    signalGroup(child, 'SIGTERM');
  });
}
