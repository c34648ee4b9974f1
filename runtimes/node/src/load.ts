import { pathToFileURL } from 'node:url';
import { logger, redirectLog } from '@pilotlight/logger';
import { FunctionShapeError, serveModule, type ServedFunction } from '@pilotlight/sdk/serve';
import { LoadError, resolveEntry } from './entry.js';

/** What the watchdog asks to load (the `load` message of docs/runtime-protocol.md). */
export interface LoadRequest {
  readonly root: string;
  readonly entrypoint?: string;
  readonly function?: string;
  readonly instance?: string;
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * The `load` message as a {@link LoadRequest}, or a `PILOTLIGHT_BAD_LOAD` error naming every field
 * that is wrong. The watchdog checks the same in `/_/specialize`; a runtime told by anything else
 * must not turn a `null` into the string "null" in the function's env.
 */
export function loadRequestOf(message: Readonly<Record<string, unknown>>): LoadRequest {
  const problems: string[] = [];
  const { root, entrypoint, function: name, instance, env } = message;
  if (typeof root !== 'string' || root === '') problems.push('root must be a non-empty string');
  for (const [field, value] of [['entrypoint', entrypoint], ['function', name], ['instance', instance]] as const) {
    if (value !== undefined && typeof value !== 'string') problems.push(`${field} must be a string when given`);
  }
  if (env !== undefined) {
    if (env === null || typeof env !== 'object' || Array.isArray(env)) problems.push('env must be an object of strings');
    else {
      for (const [key, value] of Object.entries(env)) {
        if (key === '' || key.includes('=') || key.includes('\0')) problems.push(`env name ${JSON.stringify(key)} must be non-empty, without = or NUL`);
        if (typeof value !== 'string') problems.push(`env ${JSON.stringify(key)} must be a string, not ${value === null ? 'null' : typeof value}`);
        else if (value.includes('\0')) problems.push(`env ${JSON.stringify(key)} must not contain NUL`);
      }
    }
  }
  if (problems.length > 0) throw new LoadError('PILOTLIGHT_BAD_LOAD', `the load message is malformed: ${problems.join('; ')}`);
  return message as unknown as LoadRequest;
}

/**
 * The function's logger was made as the runtime started, before the load's env existed; a
 * level given there applies to it too, as it does to `ctx.logger`, made later.
 */
function applyLogLevel(level: string | undefined): void {
  if (level === undefined) return;
  if (level !== 'silent' && !(level in logger.levels.values)) {
    throw new LoadError(
      'PILOTLIGHT_BAD_LOG_LEVEL',
      `PILOTLIGHT_FUNCTION_LOG_LEVEL "${level}" is not a log level: use one of ${Object.keys(logger.levels.values).join(', ')} or silent`,
    );
  }
  logger.level = level;
}

/** Likewise the destination: the logger was made writing where the runtime's start said. */
function applyLogFile(file: string | undefined): void {
  if (file === undefined) return;
  try {
    redirectLog(file);
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    throw new LoadError(
      'PILOTLIGHT_BAD_LOG_FILE',
      `PILOTLIGHT_LOG_FILE "${file}" cannot be opened for appending (${err.code ?? err.message}): give a path the function may write to, or leave it unset for stdout`,
    );
  }
}

/**
 * Loads a function: sets its env, imports its module (ESM or CommonJS), finds what it serves and
 * runs its initializer. Every failure is a {@link LoadError} with a stable code.
 */
export async function loadFunction(request: LoadRequest): Promise<ServedFunction> {
  const entry = resolveEntry(request.root, request.entrypoint);
  for (const [name, value] of Object.entries(request.env ?? {})) process.env[name] = value;
  applyLogLevel(request.env?.PILOTLIGHT_FUNCTION_LOG_LEVEL);
  applyLogFile(request.env?.PILOTLIGHT_LOG_FILE);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(entry.file).href)) as Record<string, unknown>;
  } catch (error) {
    const err = error as Error;
    throw Object.assign(new LoadError('PILOTLIGHT_LOAD_FAILED', `importing ${entry.file} threw: ${err?.message ?? String(error)}`), {
      stack: err?.stack,
    });
  }
  try {
    const version = process.env.PILOTLIGHT_FUNCTION_VERSION ?? process.env.K_REVISION ?? entry.version;
    const fn = serveModule(mod, entry.exportName, { name: request.function, version, instance: request.instance }, entry.file);
    await fn.initialize();
    return fn;
  } catch (error) {
    if (error instanceof FunctionShapeError) throw Object.assign(new LoadError(error.code, error.message), { stack: error.stack });
    throw error;
  }
}
