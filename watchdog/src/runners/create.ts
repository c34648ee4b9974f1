import type { Logger } from 'pino';
import type { Config } from '../config/settings.js';
import type { ChildOutputOptions } from '../log/child-output.js';
import type { Spawn } from '../process/group.js';
import { createRequire } from 'node:module';
import { HttpRunner } from './http.js';
import { RuntimeRunner } from './runtime.js';
import type { Runner, RunnerEvents } from './runner.js';
import { SerializingRunner } from './serializing.js';
import { StaticRunner } from './static.js';
import { StreamingRunner } from './streaming.js';

/** What every runner may draw on. */
export interface RunnerContext {
  readonly config: Config;
  readonly env: NodeJS.ProcessEnv;
  readonly spawn: Spawn;
  readonly logger: Logger;
  readonly output: Omit<ChildOutputOptions, 'stream' | 'logger'>;
  readonly events: RunnerEvents;
}

const requireHere = createRequire(import.meta.url);

/** The command that starts a built-in runtime. */
function runtimeArgv(config: Config): readonly string[] {
  if (config.runtimeCommand) return config.runtimeCommand;
  return [process.execPath, requireHere.resolve('@pilotlight/runtime-node/bin')];
}

/**
 * Picks the runner for the configured mode. The built-in runtimes start without
 * NODE_EXTRA_CA_CERTS, which costs every Node start tens of milliseconds of certificate parsing.
 */
export function createRunner(context: RunnerContext): Runner {
  const { config } = context;
  switch (config.mode) {
    case 'http':
      if (config.runtime !== undefined) {
        const { NODE_EXTRA_CA_CERTS: _dropped, ...env } = context.env;
        return new RuntimeRunner({
          ...context,
          env,
          runtime: config.runtime,
          instance: config.instance,
          argv: runtimeArgv(config),
          maxRestarts: config.maxRestarts,
          healthcheckInterval: config.healthcheckInterval,
          maxBodySize: config.maxBodySize,
          bufferRequestBody: config.bufferRequestBody,
          initial: config.functionDir === undefined ? undefined : { root: config.functionDir, entrypoint: config.entrypoint, function: config.functionName },
        });
      }
      return new HttpRunner({
        ...context,
        upstreamUrl: config.upstreamUrl as string,
        argv: config.process,
        maxRestarts: config.maxRestarts,
        readyPath: config.readyPath,
        healthcheckInterval: config.healthcheckInterval,
        maxBodySize: config.maxBodySize,
        bufferRequestBody: config.bufferRequestBody,
      });
    case 'serializing':
    case 'streaming': {
      const options = {
        ...context,
        argv: config.process as readonly string[],
        maxBodySize: config.maxBodySize,
        contentType: config.contentType ?? 'application/octet-stream',
      };
      return config.mode === 'serializing' ? new SerializingRunner(options) : new StreamingRunner(options);
    }
    case 'static':
      return new StaticRunner(config.staticPath);
  }
}
