import type { Logger } from 'pino';
import type { Config } from '../config/settings.js';
import type { ChildOutputOptions } from '../log/child-output.js';
import type { Spawn } from '../process/group.js';
import { createRequire } from 'node:module';
import { delimiter, dirname } from 'node:path';
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

/** The folder of the Python runtime's package (`runtimes/python`), put on PYTHONPATH. */
function pythonRuntimeDir(): string {
  return dirname(requireHere.resolve('@pilotlight/runtime-python/package.json'));
}

/**
 * V8 flags for the Node runtime, which V8 takes only on the command line. The watchdog runs with
 * these and `--no-lazy` (its bin shebang and the images' ENTRYPOINT; a test keeps the three in
 * step). `--no-lazy` is not for the runtime: it would compile all of Koa, routing-controllers
 * and class-validator at every start, and was no faster to a first response (p50 9.4 against
 * 9.5 ms in one interleaved run).
 *
 * `--no-flush-bytecode`: V8 drops the bytecode of functions that have not run for a few garbage
 * collections, and an idle process's memory reducer runs exactly those. A pool instance waits
 * idle for long, so without this its warm-up is thrown away before the specialization it was
 * for: measured, a pool instance specialized after 40 s took 15 ms to its first response instead
 * of 11 (benchmarks.md, "Pre-warmed pool").
 *
 * Not `--no-lazy-feedback-allocation`: it took up to 1 ms off a specialization, once, and added
 * 9% to the runtime's CPU per request, and 8–19% to the watchdog's, for the instance's whole life
 * (docs/architecture.md, "Type feedback from the first call").
 */
export const NODE_POOL_FLAGS = ['--no-flush-bytecode'];

/** The command that starts a built-in runtime. */
function runtimeArgv(config: Config): readonly string[] {
  if (config.runtimeCommand) return config.runtimeCommand;
  if (config.runtime === 'python') return ['python3', '-u', '-m', 'pilotlight.runtime'];
  return [process.execPath, ...NODE_POOL_FLAGS, requireHere.resolve('@pilotlight/runtime-node/bin')];
}

/** The runtime's environment: the watchdog's, minus what only slows a start, plus its own path. */
function runtimeEnv(config: Config, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { NODE_EXTRA_CA_CERTS: _dropped, ...rest } = env;
  if (config.runtime !== 'python' || config.runtimeCommand) return rest;
  const path = pythonRuntimeDir();
  return { ...rest, PYTHONPATH: rest.PYTHONPATH ? `${path}${delimiter}${rest.PYTHONPATH}` : path, PYTHONDONTWRITEBYTECODE: '1' };
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
        return new RuntimeRunner({
          ...context,
          env: runtimeEnv(config, context.env),
          runtime: config.runtime,
          instance: config.instance,
          argv: runtimeArgv(config),
          maxRestarts: config.maxRestarts,
          healthcheckInterval: config.healthcheckInterval,
          maxBodySize: config.maxBodySize,
          bufferRequestBody: config.bufferRequestBody,
          initial: config.functionDir === undefined ? undefined : { root: config.functionDir, entrypoint: config.entrypoint, function: config.functionName },
          loadTimeout: config.specializeTimeout,
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
        upstreamKeepAlive: config.upstreamKeepAlive,
      });
    case 'serializing':
    case 'streaming': {
      const options = {
        ...context,
        argv: config.process as readonly string[],
        maxBodySize: config.maxBodySize,
        contentType: config.contentType ?? 'application/octet-stream',
      };
      return config.mode === 'serializing' ? new SerializingRunner({ ...options, maxResponseSize: config.maxResponseSize }) : new StreamingRunner(options);
    }
    case 'static':
      return new StaticRunner(config.staticPath);
  }
}
