import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type CliResult, runCli, tempDir } from '../support/fork-helpers.js';
import { startHttp } from '../support/http-helpers.js';
import { freePort, killAll, startWatchdog } from '../support/watchdog.js';

const temps: Array<() => void> = [];
afterEach(async () => {
  await killAll();
  for (const remove of temps.splice(0)) remove();
});

const WATCHDOG_VERSION = (
  JSON.parse(readFileSync(new URL('../../watchdog/package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** A valid serializing setup that bad values are added to, so only the bad value is at fault. */
const SERIALIZING = { PILOTLIGHT_MODE: 'serializing', PILOTLIGHT_PROCESS: 'cat' };

/** Asserts the run failed fast on configuration and returns its problems. */
function expectConfigFailure(result: CliResult): string[] {
  expect(result.code, `stdout: ${result.stdout}\nstderr: ${result.stderr}`).toBe(1);
  // The failure is one JSON line on stdout, like every other log line.
  const lines = result.stdout.split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(1);
  const fatal = JSON.parse(lines[0] as string) as { level: string; code: string; msg: string; problems: string[] };
  expect(fatal.level).toBe('fatal');
  expect(fatal.code).toBe('PILOTLIGHT_CONFIG_INVALID');
  expect(Array.isArray(fatal.problems)).toBe(true);
  expect(fatal.problems.length).toBeGreaterThan(0);
  return fatal.problems;
}

describe('configuration errors fail fast with PILOTLIGHT_CONFIG_INVALID', () => {
  it('names a setting with an invalid duration, its source and the value', async () => {
    const problems = expectConfigFailure(await runCli([], { ...SERIALIZING, PILOTLIGHT_EXEC_TIMEOUT: 'soon' }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('PILOTLIGHT_EXEC_TIMEOUT');
    expect(problems[0]).toContain('"soon"');
    expect(problems[0]).toMatch(/duration/);
  });

  it('names the alias a bad value came from', async () => {
    const problems = expectConfigFailure(await runCli([], { ...SERIALIZING, exec_timeout: 'ten' }));
    expect(problems[0]).toContain('PILOTLIGHT_EXEC_TIMEOUT');
    expect(problems[0]).toContain('from exec_timeout');
  });

  it('names an invalid value given as a flag', async () => {
    const problems = expectConfigFailure(await runCli(['--max-inflight', '-3'], SERIALIZING));
    expect(problems[0]).toContain('--max-inflight');
  });

  it('refuses an unknown PILOTLIGHT_ variable instead of ignoring a typo', async () => {
    const problems = expectConfigFailure(await runCli([], { ...SERIALIZING, PILOTLIGHT_EXEC_TIMOUT: '1s' }));
    expect(problems.join('\n')).toContain('PILOTLIGHT_EXEC_TIMOUT');
  });

  it("refuses of-watchdog's jwt_auth rather than serve the function unauthenticated", async () => {
    const problems = expectConfigFailure(await runCli([], { ...SERIALIZING, jwt_auth: 'true' }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('jwt_auth=true');
    expect(problems[0]).toContain('unauthenticated');
    // Off is what it is without the setting: nothing to refuse.
    const off = await runCli(['--version'], { ...SERIALIZING, jwt_auth: 'false' });
    expect(off.code).toBe(0);
  });

  it('refuses an unknown flag', async () => {
    const problems = expectConfigFailure(await runCli(['--no-such-flag', 'x'], SERIALIZING));
    expect(problems.join('\n')).toContain('--no-such-flag');
  });

  it('requires the upstream URL in http mode', async () => {
    const problems = expectConfigFailure(await runCli([], { PILOTLIGHT_MODE: 'http' }));
    expect(problems.join('\n')).toContain('PILOTLIGHT_UPSTREAM_URL');
  });

  it.each(['serializing', 'streaming'])('requires the process in %s mode', async (mode) => {
    const problems = expectConfigFailure(await runCli([], { PILOTLIGHT_MODE: mode }));
    expect(problems.join('\n')).toContain('PILOTLIGHT_PROCESS');
  });

  it('refuses an exec timeout longer than the write timeout, naming both', async () => {
    const problems = expectConfigFailure(
      await runCli([], { ...SERIALIZING, PILOTLIGHT_EXEC_TIMEOUT: '20s', PILOTLIGHT_WRITE_TIMEOUT: '10s' }),
    );
    const text = problems.join('\n');
    expect(text).toContain('PILOTLIGHT_EXEC_TIMEOUT');
    expect(text).toContain('PILOTLIGHT_WRITE_TIMEOUT');
  });

  it('refuses an unknown mode', async () => {
    const problems = expectConfigFailure(await runCli([], { PILOTLIGHT_MODE: 'batch', PILOTLIGHT_PROCESS: 'cat' }));
    expect(problems.join('\n')).toContain('PILOTLIGHT_MODE');
  });

  it('reports every problem of one start together', async () => {
    const problems = expectConfigFailure(
      await runCli(['--bogus'], { ...SERIALIZING, PILOTLIGHT_EXEC_TIMEOUT: 'soon', PILOTLIGHT_MAX_BODY_SIZE: 'big', PILOTLIGHT_TYPO: '1' }),
    );
    const text = problems.join('\n');
    for (const name of ['--bogus', 'PILOTLIGHT_EXEC_TIMEOUT', 'PILOTLIGHT_MAX_BODY_SIZE', 'PILOTLIGHT_TYPO']) expect(text).toContain(name);
  });
});

describe('command line', () => {
  it('--help lists every flag with its variable', async () => {
    const result = await runCli(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: pilotlight/);
    for (const [flag, env] of [
      ['--mode', 'PILOTLIGHT_MODE'],
      ['--process', 'PILOTLIGHT_PROCESS'],
      ['--upstream-url', 'PILOTLIGHT_UPSTREAM_URL'],
      ['--port', 'PILOTLIGHT_PORT'],
      ['--exec-timeout', 'PILOTLIGHT_EXEC_TIMEOUT'],
      ['--static-path', 'PILOTLIGHT_STATIC_PATH'],
      ['--log-buffer-size', 'PILOTLIGHT_LOG_BUFFER_SIZE'],
      ['--suppress-lock', 'PILOTLIGHT_SUPPRESS_LOCK'],
    ]) {
      expect(result.stdout).toMatch(new RegExp(`${flag}\\s+${env}`));
    }
  });

  it('--help works without any other configuration', async () => {
    const result = await runCli(['--help'], { PILOTLIGHT_MODE: 'http' });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('--mode');
  });

  it('--version prints the version', async () => {
    const result = await runCli(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(WATCHDOG_VERSION);
  });
});

describe('of-watchdog aliases and precedence', () => {
  it('accepts fprocess, mode and exec_timeout', async () => {
    const watchdog = await startWatchdog({
      env: { mode: 'serializing', fprocess: 'sleep 30', exec_timeout: '0.3' },
    });
    const status = (await fetch(`${watchdog.url}/_/status`).then((r) => r.json())) as { mode: string };
    expect(status.mode).toBe('serializing');
    // exec_timeout as a bare number of seconds, as of-watchdog reads it: 0.3 → 300 ms.
    const res = await fetch(`${watchdog.url}/`);
    expect(res.status).toBe(504);
    expect(((await res.json()) as { message: string }).message).toContain('300 ms');
  });

  it('accepts function_process and content_type', async () => {
    const watchdog = await startWatchdog({
      env: { mode: 'streaming', function_process: 'cat', content_type: 'text/x-alias' },
    });
    const res = await fetch(`${watchdog.url}/`, { method: 'POST', body: 'via aliases' });
    expect(res.headers.get('content-type')).toBe('text/x-alias');
    expect(await res.text()).toBe('via aliases');
  });

  it('listens on PORT when PILOTLIGHT_PORT is unset', async () => {
    const port = await freePort();
    const watchdog = await startWatchdog({ env: { ...SERIALIZING, PILOTLIGHT_PORT: undefined, PORT: String(port) } });
    expect(watchdog.port).toBe(port);
    expect((await fetch(`http://127.0.0.1:${port}/_/health`)).status).toBe(200);
  });

  it('prefers PILOTLIGHT_* over an alias', async () => {
    const watchdog = await startWatchdog({ env: { PILOTLIGHT_MODE: 'serializing', mode: 'streaming', PILOTLIGHT_PROCESS: 'cat' } });
    const status = (await fetch(`${watchdog.url}/_/status`).then((r) => r.json())) as { mode: string };
    expect(status.mode).toBe('serializing');
  });

  it('prefers a CLI flag over the environment', async () => {
    const watchdog = await startWatchdog({
      env: { ...SERIALIZING, PILOTLIGHT_CONTENT_TYPE: 'text/from-env' },
      args: ['--mode', 'streaming', '--content-type=text/from-flag'],
    });
    const status = (await fetch(`${watchdog.url}/_/status`).then((r) => r.json())) as { mode: string };
    expect(status.mode).toBe('streaming');
    const res = await fetch(`${watchdog.url}/`, { method: 'POST', body: 'x' });
    expect(res.headers.get('content-type')).toBe('text/from-flag');
  });

  it('takes the command after -- over PILOTLIGHT_PROCESS', async () => {
    const watchdog = await startWatchdog({
      env: { PILOTLIGHT_MODE: 'serializing', PILOTLIGHT_PROCESS: 'false' },
      args: ['--', 'cat'],
    });
    const res = await fetch(`${watchdog.url}/`, { method: 'POST', body: 'from argv' });
    expect(await res.text()).toBe('from argv');
  });
});

describe('a host that is not an address of this machine', () => {
  it('exits 1 with PILOTLIGHT_START_FAILED naming PILOTLIGHT_HOST', async () => {
    const failing = await startWatchdog({ env: { ...SERIALIZING, PILOTLIGHT_HOST: 'not_a_host' }, waitFor: 'nothing' });
    expect((await failing.exited).code).toBe(1);
    const fatal = failing.logs.find((r) => r.level === 'fatal');
    expect(fatal).toMatchObject({ code: 'PILOTLIGHT_START_FAILED' });
    expect(fatal?.msg).toContain('cannot listen on host not_a_host (PILOTLIGHT_HOST)');
  });
});

describe('lock file', () => {
  it('exists while ready and is removed on SIGTERM', async () => {
    const dir = tempDir();
    temps.push(dir.remove);
    const lock = join(dir.path, '.lock');
    const watchdog = await startWatchdog({
      env: { ...SERIALIZING, PILOTLIGHT_SUPPRESS_LOCK: 'false', PILOTLIGHT_LOCK_FILE: lock },
    });
    // startWatchdog returns once the log says ready; the file is written on that same change.
    expect(existsSync(lock)).toBe(true);
    watchdog.process.kill('SIGTERM');
    expect((await watchdog.exited).code).toBe(0);
    expect(existsSync(lock)).toBe(false);
  });

  it('is removed at start when an earlier run left it, and stays away until the instance is ready', async () => {
    const dir = tempDir();
    temps.push(dir.remove);
    const lock = join(dir.path, '.lock');
    writeFileSync(lock, '');
    // Nothing listens at the upstream: the instance stays starting.
    const watchdog = await startWatchdog({
      env: { PILOTLIGHT_MODE: 'http', PILOTLIGHT_UPSTREAM_URL: `http://127.0.0.1:${await freePort()}`, PILOTLIGHT_SUPPRESS_LOCK: 'false', PILOTLIGHT_LOCK_FILE: lock },
      waitFor: 'listening',
    });
    expect(((await (await fetch(`${watchdog.url}/_/status`)).json()) as { state: string }).state).toBe('starting');
    expect(existsSync(lock)).toBe(false);
  });

  it('is removed while the http process restarts, and written again once it answers', async () => {
    const dir = tempDir();
    temps.push(dir.remove);
    const lock = join(dir.path, '.lock');
    const { watchdog } = await startHttp('http-upstream.js', { env: { PILOTLIGHT_SUPPRESS_LOCK: 'false', PILOTLIGHT_LOCK_FILE: lock } });
    expect(existsSync(lock)).toBe(true);
    const firstReady = watchdog.logs.find((r) => r.state === 'ready');
    await fetch(`${watchdog.url}/crash`);
    await watchdog.waitForLog((r) => r.state === 'starting' && r.previous === 'ready');
    expect(existsSync(lock)).toBe(false);
    await watchdog.waitForLog((r) => r.state === 'ready' && r !== firstReady);
    expect(existsSync(lock)).toBe(true);
  });

  it('is not written with suppress_lock, and health still answers 200', async () => {
    const dir = tempDir();
    temps.push(dir.remove);
    const lock = join(dir.path, '.lock');
    const watchdog = await startWatchdog({
      env: { ...SERIALIZING, suppress_lock: 'true', PILOTLIGHT_SUPPRESS_LOCK: undefined, PILOTLIGHT_LOCK_FILE: lock },
    });
    const health = await fetch(`${watchdog.url}/_/health`);
    expect(health.status).toBe(200);
    expect(existsSync(lock)).toBe(false);
    expect((await fetch(`${watchdog.url}/_/ready`)).status).toBe(200);
  });
});
