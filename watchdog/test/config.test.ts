import { describe, expect, it } from 'vitest';
import { ConfigError, helpText, loadConfig } from '../src/config/load.js';
import { parseDuration, parseSize } from '../src/config/parsers.js';

const HTTP = { PILOTLIGHT_UPSTREAM_URL: 'http://127.0.0.1:3000' };

function problemsOf(env: Record<string, string>, argv: string[] = []): readonly string[] {
  try {
    loadConfig(env, argv);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('parsers', () => {
  it('reads Go durations and bare seconds like of-watchdog', () => {
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('1.5s')).toBe(1_500);
    expect(parseDuration('10')).toBe(10_000);
    expect(parseDuration('2h')).toBe(7_200_000);
    for (const bad of ['', 's', '10x', '5s3', '-1s', '1m 30s']) expect(() => parseDuration(bad), bad).toThrow(TypeError);
    // Node's timers cannot hold more than 2^31 - 1 ms; a positive duration never rounds to 0 ("off").
    expect(() => parseDuration('720h')).toThrow(/at most 24 days/);
    expect(parseDuration('24h')).toBe(86_400_000);
    expect(parseDuration('0.4ms')).toBe(1);
    expect(parseDuration('0')).toBe(0);
  });

  it('reads sizes with decimal and binary units', () => {
    expect(parseSize('512')).toBe(512);
    expect(parseSize('64kb')).toBe(64_000);
    expect(parseSize('10MiB')).toBe(10 * 1024 * 1024);
    expect(parseSize('1GiB')).toBe(1024 ** 3);
    for (const bad of ['', 'MiB', '10 parsecs', '-1']) expect(() => parseSize(bad), bad).toThrow(TypeError);
  });
});

describe('loadConfig', () => {
  it('applies defaults and returns a frozen object', () => {
    const { config, command } = loadConfig(HTTP, []);
    expect(command).toBe('run');
    expect(config.mode).toBe('http');
    expect(config.port).toBe(8080);
    expect(config.execTimeout).toBe(10_000);
    expect(config.maxInflight).toBe(0);
    expect(config.process).toBeUndefined();
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('accepts of-watchdog names as aliases', () => {
    const { config } = loadConfig(
      {
        mode: 'serializing',
        fprocess: 'python3 handler.py --flag "two words"',
        exec_timeout: '3s',
        write_timeout: '5s',
        max_inflight: '4',
        suppress_lock: 'true',
        content_type: 'application/json',
        port: '9000',
      },
      [],
    );
    expect(config.mode).toBe('serializing');
    expect(config.process).toEqual(['python3', 'handler.py', '--flag', 'two words']);
    expect(config.execTimeout).toBe(3_000);
    expect(config.maxInflight).toBe(4);
    expect(config.suppressLock).toBe(true);
    expect(config.contentType).toBe('application/json');
    expect(config.port).toBe(9000);
  });

  it('ranks flag over PILOTLIGHT_* over PORT over the alias', () => {
    expect(loadConfig({ ...HTTP, port: '1', PORT: '2' }, []).config.port).toBe(2);
    expect(loadConfig({ ...HTTP, port: '1', PORT: '2', PILOTLIGHT_PORT: '3' }, []).config.port).toBe(3);
    expect(loadConfig({ ...HTTP, PILOTLIGHT_PORT: '3' }, ['--port', '4']).config.port).toBe(4);
    expect(loadConfig({ ...HTTP, PILOTLIGHT_PORT: '3' }, ['--port=5']).config.port).toBe(5);
  });

  it('takes the command after -- verbatim, and bare boolean flags as true', () => {
    const { config } = loadConfig(HTTP, ['--suppress-lock', '--', 'node', 'server.js', '--port', '1']);
    expect(config.process).toEqual(['node', 'server.js', '--port', '1']);
    expect(config.suppressLock).toBe(true);
  });

  it('takes a true/false word after a boolean flag as its value, and nothing else', () => {
    expect(loadConfig(HTTP, ['--prefix-logs', 'false']).config.prefixLogs).toBe(false);
    expect(loadConfig(HTTP, ['--suppress-lock', 'no', '--prefix-logs', 'ON']).config).toMatchObject({ suppressLock: false, prefixLogs: true });
    const { config } = loadConfig(HTTP, ['--suppress-lock', '--port', '7']);
    expect(config).toMatchObject({ suppressLock: true, port: 7 });
  });

  it('reports every bad setting at once, naming variable, flag, source and expectation', () => {
    const problems = problemsOf({ ...HTTP, PILOTLIGHT_EXEC_TIMEOUT: 'soon', max_inflight: '-2', PILOTLIGHT_MODE: 'fast' });
    expect(problems).toHaveLength(3);
    expect(problems.find((p) => p.startsWith('PILOTLIGHT_EXEC_TIMEOUT (--exec-timeout) from PILOTLIGHT_EXEC_TIMEOUT is "soon"'))).toMatch(/duration/);
    expect(problems.find((p) => p.includes('from max_inflight is "-2"'))).toMatch(/whole number/);
    expect(problems.find((p) => p.startsWith('PILOTLIGHT_MODE'))).toMatch(/one of http, serializing, streaming, static/);
  });

  it('refuses unknown PILOTLIGHT_* variables, unknown flags and stray arguments', () => {
    const problems = problemsOf({ ...HTTP, PILOTLIGHT_EXEC_TIMOUT: '1s' }, ['--bogus', 'stray']);
    expect(problems.some((p) => p.includes('unknown setting PILOTLIGHT_EXEC_TIMOUT'))).toBe(true);
    expect(problems.some((p) => p.includes('unknown flag --bogus'))).toBe(true);
    expect(problems.some((p) => p.includes('unexpected argument "stray"'))).toBe(true);
  });

  it('checks the rules between settings', () => {
    expect(problemsOf({})[0]).toMatch(/PILOTLIGHT_UPSTREAM_URL .* is required in http mode/);
    expect(problemsOf({ PILOTLIGHT_MODE: 'streaming' })[0]).toMatch(/PILOTLIGHT_PROCESS .* is required in streaming mode/);
    expect(problemsOf({ ...HTTP, exec_timeout: '20s' })[0]).toMatch(/longer than PILOTLIGHT_WRITE_TIMEOUT/);
    expect(problemsOf({ ...HTTP, PILOTLIGHT_MAX_QUEUE: '5' })[0]).toMatch(/needs PILOTLIGHT_MAX_INFLIGHT/);
    expect(problemsOf({ PILOTLIGHT_MODE: 'serializing', PILOTLIGHT_PROCESS: 'cat | wc' })[0]).toMatch(/shell operators/);
    // An empty variable counts as unset: it falls through to the next name, then the default.
    expect(loadConfig({ ...HTTP, PILOTLIGHT_PORT: '', PORT: '9000' }, []).config.port).toBe(9000);
    expect(loadConfig({ ...HTTP, PILOTLIGHT_PORT: '' }, []).config.port).toBe(8080);
    // Values a setting cannot work with are refused rather than hanging or spinning at runtime.
    expect(problemsOf({ ...HTTP, PILOTLIGHT_LOG_BUFFER_SIZE: '0' })[0]).toMatch(/PILOTLIGHT_LOG_BUFFER_SIZE .* at least 1KiB/);
    expect(problemsOf({ ...HTTP, PILOTLIGHT_HEALTHCHECK_INTERVAL: '0' })[0]).toMatch(/PILOTLIGHT_HEALTHCHECK_INTERVAL .* above 0/);
    expect(problemsOf({ ...HTTP, PILOTLIGHT_QUEUE_TIMEOUT: '0s' })[0]).toMatch(/PILOTLIGHT_QUEUE_TIMEOUT .* above 0/);
    expect(problemsOf({ ...HTTP, PILOTLIGHT_SCALE_HINT_INTERVAL: '0' })[0]).toMatch(/PILOTLIGHT_SCALE_HINT_INTERVAL .* above 0/);
    expect(problemsOf({ ...HTTP, PILOTLIGHT_CONTENT_TYPE: 'text/plain\u0001' })[0]).toMatch(/PILOTLIGHT_CONTENT_TYPE .* HTTP header/);
    expect(problemsOf({ ...HTTP, PILOTLIGHT_EXEC_TIMEOUT: '720h', PILOTLIGHT_WRITE_TIMEOUT: '720h' })).toHaveLength(2);
    // A URL keeps the trailing slash of its path; only a bare "/" goes.
    expect(loadConfig({ ...HTTP, PILOTLIGHT_SCALE_HINT_URL: 'http://as:9/hints/' }, []).config.scaleHintUrl).toBe('http://as:9/hints/');
    expect(loadConfig({ PILOTLIGHT_UPSTREAM_URL: 'http://127.0.0.1:3000/' }, []).config.upstreamUrl).toBe('http://127.0.0.1:3000');
    expect(problemsOf({ PILOTLIGHT_RUNTIME: 'node', PILOTLIGHT_ENTRYPOINT: 'dist/index.js' })[0]).toMatch(/PILOTLIGHT_ENTRYPOINT .* needs PILOTLIGHT_FUNCTION_DIR/);
    expect(loadConfig({ PILOTLIGHT_RUNTIME: 'node', PILOTLIGHT_FUNCTION_DIR: '/fn', PILOTLIGHT_ENTRYPOINT: 'main.js' }, []).config.entrypoint).toBe('main.js');
    expect(loadConfig({ ...HTTP, exec_timeout: '20s', write_timeout: '0' }, []).config.execTimeout).toBe(20_000);
  });

  it('answers --help and --version without requiring a valid setup', () => {
    expect(loadConfig({}, ['--help']).command).toBe('help');
    expect(loadConfig({}, ['--version']).command).toBe('version');
    expect(helpText()).toContain('--exec-timeout');
  });
});
