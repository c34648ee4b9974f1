import { afterEach, describe, expect, it } from 'vitest';
import { eventually, fixture, killMarked, processInfo, processesWithMarker, uniqueMarker as newMarker, zombiesOf } from '../support/fork-helpers.js';
import { killAll, type RunningWatchdog, startWatchdog } from '../support/watchdog.js';

const markers: string[] = [];
afterEach(async () => {
  await killAll();
  for (const marker of markers.splice(0)) killMarked(marker);
});

function uniqueMarker(): string {
  const marker = newMarker();
  markers.push(marker);
  return marker;
}

/** The pids the fixture reported on stderr (`fork-tree child 123`, `fork-tree leader 456`). */
function reportedPids(watchdog: RunningWatchdog, prefix: string): number[] {
  return watchdog.logs
    .filter((r) => typeof r.msg === 'string' && r.msg.startsWith(prefix))
    .map((r) => Number((r.msg as string).split(' ').pop()));
}

/**
 * Whether `pid` no longer runs. A killed grandchild is re-parented to PID 1 (or the nearest
 * subreaper); if that never reaps it (this sandbox's PID 1 does not) it lingers as a zombie that
 * is not the watchdog's, so a zombie not parented by the watchdog counts as gone. This does NOT
 * cover the watchdog itself being PID 1 in a container: orphans are then re-parented to it, and
 * Node only reaps the children it spawned.
 */
function notRunning(pid: number, watchdogPid: number): boolean {
  const info = processInfo(pid);
  return info === undefined || (info.state === 'Z' && info.ppid !== watchdogPid);
}

async function expectTreeGone(watchdog: RunningWatchdog, marker: string, prefix: string): Promise<void> {
  const watchdogPid = watchdog.process.pid!;
  const gone = await eventually(() => processesWithMarker(marker).length === 0);
  expect(gone, `still running: ${JSON.stringify(processesWithMarker(marker))}`).toBe(true);
  const pids = reportedPids(watchdog, prefix);
  // The leader is the watchdog's own child: between its death and the watchdog's SIGCHLD
  // handling it is briefly the watchdog's zombie, so this is polled, not read once.
  for (const pid of pids) {
    expect(await eventually(() => notRunning(pid, watchdogPid)), `pid ${pid}: ${JSON.stringify(processInfo(pid))}`).toBe(true);
  }
  // The watchdog reaps its own children: none may linger as its zombie.
  expect(await eventually(() => zombiesOf(watchdogPid).length === 0)).toBe(true);
}

describe.each(['serializing', 'streaming'] as const)('exec timeout in %s mode', (mode) => {
  it('answers 504 and kills the whole process tree', async () => {
    const marker = uniqueMarker();
    const watchdog = await startWatchdog({
      env: { PILOTLIGHT_MODE: mode, PILOTLIGHT_PROCESS: `${fixture('fork-tree.sh')} ${marker}`, PILOTLIGHT_EXEC_TIMEOUT: '500ms' },
    });
    const pending = fetch(`${watchdog.url}/`, { method: 'POST', body: 'x' });
    // The tree must really exist before the timeout, or the checks below would prove nothing.
    expect(await eventually(() => processesWithMarker(marker).length >= 3, 5_000)).toBe(true);
    const res = await pending;
    expect(res.status).toBe(504);
    expect(res.headers.get('x-pilotlight-error')).toBe('PILOTLIGHT_EXEC_TIMEOUT');
    const body = (await res.json()) as { code: string; requestId: string };
    expect(body.code).toBe('PILOTLIGHT_EXEC_TIMEOUT');
    expect(body.requestId).toBe(res.headers.get('x-request-id'));
    await watchdog.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('fork-tree leader'));
    expect(reportedPids(watchdog, 'fork-tree child')).toHaveLength(2);
    await expectTreeGone(watchdog, marker, 'fork-tree');
    // The timeout is logged with the request id.
    const warn = await watchdog.waitForLog((r) => r.code === 'PILOTLIGHT_EXEC_TIMEOUT');
    expect(warn.request_id).toBe(body.requestId);
  });

  it('honours a shorter X-Timeout header the same way', async () => {
    const marker = uniqueMarker();
    const watchdog = await startWatchdog({
      env: { PILOTLIGHT_MODE: mode, PILOTLIGHT_PROCESS: `${fixture('fork-tree.sh')} ${marker}`, PILOTLIGHT_EXEC_TIMEOUT: '30s', PILOTLIGHT_WRITE_TIMEOUT: '30s' },
    });
    const pending = fetch(`${watchdog.url}/`, { headers: { 'x-timeout': '300ms' } });
    expect(await eventually(() => processesWithMarker(marker).length >= 3, 5_000)).toBe(true);
    const res = await pending;
    expect(res.status).toBe(504);
    expect(((await res.json()) as { code: string }).code).toBe('PILOTLIGHT_EXEC_TIMEOUT');
    await expectTreeGone(watchdog, marker, 'fork-tree');
  });

  it('kills a background child left behind by a process that exited normally', async () => {
    const marker = uniqueMarker();
    const watchdog = await startWatchdog({
      env: { PILOTLIGHT_MODE: mode, PILOTLIGHT_PROCESS: `${fixture('fork-orphan.sh')} ${marker}` },
    });
    const res = await fetch(`${watchdog.url}/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('done\n');
    await watchdog.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('fork-orphan child'));
    await expectTreeGone(watchdog, marker, 'fork-orphan');
  });
});

describe('exec timeout after output has started (streaming)', () => {
  it('cuts the response and still kills the process tree', async () => {
    const marker = uniqueMarker();
    // `sh -c` so the tree writes to stdout first: the 200 is out, only a cut can signal the timeout.
    const script = `echo started; exec ${fixture('fork-tree.sh')} ${marker}`;
    const watchdog = await startWatchdog({
      env: { PILOTLIGHT_MODE: 'streaming', PILOTLIGHT_PROCESS: `sh -c '${script}'`, PILOTLIGHT_EXEC_TIMEOUT: '500ms' },
    });
    const res = await fetch(`${watchdog.url}/`);
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
    await watchdog.waitForLog((r) => r.code === 'PILOTLIGHT_EXEC_TIMEOUT');
    await expectTreeGone(watchdog, marker, 'fork-tree');
  });
});
