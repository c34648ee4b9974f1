import { isBoolWord } from './parsers.js';
import { type Config, FUNCTION_VARIABLES, SETTINGS, type Setting } from './settings.js';

type Key = keyof typeof SETTINGS;
type Env = Readonly<Record<string, string | undefined>>;

/** Thrown when the configuration cannot be used; `problems` has one line per bad setting. */
export class ConfigError extends Error {
  readonly code = 'PILOTLIGHT_CONFIG_INVALID';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}\nSee docs/config.md for every setting.`);
    this.name = 'ConfigError';
  }
}

/** What the command line asked for besides settings. */
export type Command = 'run' | 'help' | 'version';

const KEYS = Object.keys(SETTINGS) as Key[];
const BY_FLAG = new Map<string, Key>(KEYS.map((key) => [SETTINGS[key].flag, key]));
const KNOWN_ENV = new Set(KEYS.map((key) => SETTINGS[key].env));

function describe(setting: Setting<unknown>): string {
  return `${setting.env} (--${setting.flag})`;
}

function isBoolean(setting: Setting<unknown>): boolean {
  return setting.default === 'true' || setting.default === 'false';
}

interface ParsedArgv {
  command: Command;
  flags: Map<Key, string>;
  processArgv: readonly string[] | undefined;
}

function parseArgv(argv: readonly string[], problems: string[]): ParsedArgv {
  const flags = new Map<Key, string>();
  let command: Command = 'run';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      const rest = argv.slice(i + 1);
      return { command, flags, processArgv: rest.length > 0 ? Object.freeze(rest) : undefined };
    }
    if (arg === '--help' || arg === '-h') command = 'help';
    else if (arg === '--version' || arg === '-v') command = 'version';
    else if (!arg.startsWith('--')) {
      problems.push(`unexpected argument "${arg}": put the function's command after -- or in --process`);
    } else {
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq === -1 ? undefined : eq);
      const key = BY_FLAG.get(name);
      if (key === undefined) {
        problems.push(`unknown flag --${name}: run pilotlight --help for the list`);
        continue;
      }
      if (eq !== -1) flags.set(key, arg.slice(eq + 1));
      else if (isBoolean(SETTINGS[key])) {
        // `--prefix-logs false` as well as `--prefix-logs=false`; a bare flag means true.
        const next = argv[i + 1];
        flags.set(key, next !== undefined && isBoolWord(next) ? (argv[++i] as string) : 'true');
      }
      else if (i + 1 < argv.length) flags.set(key, argv[++i] as string);
      else problems.push(`flag --${name} needs a value`);
    }
  }
  return { command, flags, processArgv: undefined };
}

function rawValue(key: Key, flags: Map<Key, string>, env: Env): { raw: string; from: string } | undefined {
  const setting = SETTINGS[key];
  const flag = flags.get(key);
  if (flag !== undefined) return { raw: flag, from: `--${setting.flag}` };
  for (const name of [setting.env, ...setting.aliases]) {
    const value = env[name];
    if (value !== undefined && value !== '') return { raw: value, from: name };
  }
  return setting.default === undefined ? undefined : { raw: setting.default, from: 'default' };
}

function crossCheck(config: Config, problems: string[]): void {
  const need = (key: Key, why: string) => {
    if (config[key] === undefined) problems.push(`${describe(SETTINGS[key])} is required ${why}`);
  };
  if (config.runtime !== undefined) {
    if (config.mode !== 'http') problems.push(`${describe(SETTINGS.runtime)} runs in http mode only, not ${config.mode}: unset PILOTLIGHT_MODE`);
    for (const key of ['upstreamUrl', 'process'] as const) {
      if (config[key] !== undefined) {
        problems.push(`${describe(SETTINGS[key])} cannot be combined with ${describe(SETTINGS.runtime)}: the runtime is the process; unset one of them`);
      }
    }
    if (config.entrypoint !== undefined && config.functionDir === undefined) {
      problems.push(
        `${describe(SETTINGS.entrypoint)} needs ${describe(SETTINGS.functionDir)}: a generic instance takes its entrypoint with the code, in POST /_/specialize`,
      );
    }
  } else {
    if (config.mode === 'http') need('upstreamUrl', 'in http mode without a runtime: set it to the address your process listens on');
    for (const key of ['functionDir', 'entrypoint'] as const) {
      if (config[key] !== undefined) problems.push(`${describe(SETTINGS[key])} needs ${describe(SETTINGS.runtime)}, the runtime that loads it`);
    }
  }
  if (config.runtimeCommand !== undefined && config.runtime === undefined) {
    problems.push(`${describe(SETTINGS.runtimeCommand)} needs ${describe(SETTINGS.runtime)} to say which protocol peer it replaces`);
  }
  if (config.mode === 'serializing' || config.mode === 'streaming') {
    need('process', `in ${config.mode} mode: set it to the command that handles one request`);
  }
  if (config.writeTimeout > 0 && config.execTimeout > config.writeTimeout) {
    problems.push(
      `${describe(SETTINGS.execTimeout)} (${config.execTimeout} ms) is longer than ` +
        `${describe(SETTINGS.writeTimeout)} (${config.writeTimeout} ms), so responses would be cut before ` +
        'the exec timeout could answer 504: raise the write timeout or lower the exec timeout',
    );
  }
  if (config.maxQueue > 0 && config.maxInflight === 0) {
    problems.push(`${describe(SETTINGS.maxQueue)} needs ${describe(SETTINGS.maxInflight)} above 0: a queue only forms at a limit`);
  }
}

/**
 * of-watchdog settings Pilotlight does not implement and must not ignore: the function would be
 * served without what they ask for. (Those it ignores, such as `log_callid`, change only logs.)
 */
const REFUSED_OF_WATCHDOG: Readonly<Record<string, string>> = {
  jwt_auth:
    "is OpenFaaS Pro's per-function authentication, which Pilotlight does not implement: requests would reach the function unauthenticated; " +
    'authenticate in front of the function (the gateway) and unset it',
};

/** True for the values of-watchdog reads as on (`strconv.ParseBool`, or "1"). */
function switchedOn(value: string | undefined): boolean {
  return value !== undefined && ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value);
}

/**
 * Builds the configuration from the environment and the command line, and nothing else.
 * A CLI flag wins over `PILOTLIGHT_*`, which wins over the aliases, which win over the default.
 * Every problem is collected before throwing, so one start reports them all.
 *
 * @throws {ConfigError} when any setting is invalid, unknown or missing.
 */
export function loadConfig(env: Env, argv: readonly string[]): { command: Command; config: Config } {
  const problems: string[] = [];
  const { command, flags, processArgv } = parseArgv(argv, problems);
  for (const name of Object.keys(env)) {
    if (name.startsWith('PILOTLIGHT_') && !KNOWN_ENV.has(name) && !(name in FUNCTION_VARIABLES)) {
      problems.push(`unknown setting ${name}: check the spelling against docs/config.md`);
    }
  }
  for (const [name, why] of Object.entries(REFUSED_OF_WATCHDOG)) {
    if (switchedOn(env[name])) problems.push(`${name}=${env[name]} (of-watchdog) ${why}`);
  }
  const values: Record<string, unknown> = {};
  for (const key of KEYS) {
    const found = rawValue(key, flags, env);
    if (found === undefined) continue;
    try {
      values[key] = SETTINGS[key].parse(found.raw);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      problems.push(`${describe(SETTINGS[key])} from ${found.from} is "${found.raw}": ${reason}`);
    }
  }
  if (processArgv !== undefined) values.process = processArgv;
  const config = Object.freeze(values) as Config;
  if (problems.length === 0 && command === 'run') crossCheck(config, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return { command, config };
}

/** The `--help` text, generated from the settings table. */
export function helpText(): string {
  const lines = ['Usage: pilotlight [flags] [-- command args...]', '', 'Flags (each also an environment variable):'];
  for (const key of KEYS) {
    const setting = SETTINGS[key];
    const def = setting.default === undefined ? '' : ` [default: ${setting.default}]`;
    lines.push(`  --${setting.flag.padEnd(22)} ${setting.env}${def}`);
  }
  lines.push('', 'Details: docs/config.md');
  return lines.join('\n');
}
