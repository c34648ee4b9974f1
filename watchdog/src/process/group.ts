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

/**
 * Sends SIGTERM to the group, then SIGKILL if the leader has not exited within `graceMs`.
 * Resolves once the leader has exited.
 */
export function stopGroup(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    signalGroup(child, 'SIGKILL');
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      // Anything the leader left behind in its group goes with it.
      signalGroup(child, 'SIGKILL');
      resolve();
    });
    signalGroup(child, 'SIGTERM');
  });
}
