import { readFileSync } from 'node:fs';
import { ConfigError, helpText, loadConfig } from './config/load.js';
import type { Identity } from './control/specialize.js';
import { createLogger, drainLog } from './log/logger.js';
import { defaultSpawn } from './process/group.js';
import { Watchdog } from './watchdog.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function fatal(code: string, message: string, extra: object = {}): never {
  process.stdout.write(`${JSON.stringify({ level: 'fatal', time: new Date().toISOString(), code, ...extra, msg: message })}\n`);
  process.exit(1);
}

/**
 * The `pilotlight` entrypoint: the only place that reads `process.env` and `process.argv`
 * (handed in by bin/pilotlight.js) and installs signal handlers.
 */
export async function main(env: NodeJS.ProcessEnv, argv: readonly string[]): Promise<void> {
  let loaded: ReturnType<typeof loadConfig>;
  try {
    loaded = loadConfig(env, argv);
  } catch (error) {
    if (error instanceof ConfigError) fatal(error.code, error.message, { problems: error.problems });
    throw error;
  }
  if (loaded.command === 'help') {
    process.stdout.write(`${helpText()}\n`);
    return;
  }
  if (loaded.command === 'version') {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  const { config } = loaded;
  // One identity for the logger and the watchdog: a name given at specialization shows in every line after it.
  const identity: Identity = { functionName: config.functionName, specializeMs: undefined };
  const { logger, destination } = createLogger({ level: config.logLevel, functionName: () => identity.functionName, instance: config.instance });
  const startFailed = async (error: unknown): Promise<never> => {
    logger.fatal({ err: error, code: 'PILOTLIGHT_START_FAILED' }, `could not start: ${(error as Error).message}`);
    await drainLog(destination);
    process.exit(1);
  };
  let watchdog: Watchdog;
  try {
    watchdog = new Watchdog({
      config,
      logger,
      spawn: defaultSpawn,
      env,
      writeRaw: (text) => destination.write(text),
      version: VERSION,
      identity,
    });
  } catch (error) {
    return startFailed(error);
  }
  if (process.pid === 1) {
    // Orphans are re-parented to PID 1, and Node reaps only the children it spawned itself.
    logger.warn(
      { code: 'PILOTLIGHT_PID1' },
      'running as PID 1: processes a function abandons will stay as zombies; start the watchdog under an init (tini, docker run --init)',
    );
  }
  let stopped: Promise<void> | undefined;
  const stop = (signal: NodeJS.Signals) => {
    logger.info({ signal }, `received ${signal}, draining`);
    // A second signal waits for the same drain: the log can be ended only once.
    stopped ??= watchdog.shutdown(signal).then(() => drainLog(destination));
    void stopped.then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  try {
    await watchdog.start();
  } catch (error) {
    await startFailed(error);
  }
}
