import type { RequestListener } from 'node:http';
import { pathToFileURL } from 'node:url';
import type { Logger } from '@pilotlight/logger';
import Koa from 'koa';
import { getMetadataArgsStorage, useKoaServer } from 'routing-controllers';
import { LoadError, resolveEntry } from './entry.js';
import { describeThrown, sendThrown } from './errors.js';
import { type PlainHandler, plainListener } from './plain.js';

/** What the watchdog asks to load (the `load` message of docs/runtime-protocol.md). */
export interface LoadRequest {
  readonly root: string;
  readonly entrypoint?: string;
  readonly function?: string;
  readonly env?: Readonly<Record<string, string>>;
}

/** A loaded function, ready to serve. */
export interface LoadedFunction {
  readonly kind: 'controllers' | 'handler';
  readonly listener: RequestListener;
  /** `METHOD /path` of every route, for the watchdog's log and status. */
  readonly routes: readonly string[];
}

type Constructor = abstract new (...args: never[]) => unknown;

/** Every value a module exports, looking inside a CommonJS `module.exports` object too. */
function exportedValues(mod: Record<string, unknown>): unknown[] {
  const values = Object.values(mod);
  const def = mod.default;
  if (def !== null && typeof def === 'object') values.push(...Object.values(def));
  return values;
}

/** Classes with routing-controllers' @Controller metadata, found by identity, never by file glob. */
function controllersIn(values: unknown[]): Constructor[] {
  const registered = new Set<unknown>(getMetadataArgsStorage().controllers.map((c) => c.target));
  return [...new Set(values)].filter((v): v is Constructor => typeof v === 'function' && registered.has(v));
}

function routesOf(controllers: Constructor[]): string[] {
  const storage = getMetadataArgsStorage();
  return storage.actions
    .filter((a) => controllers.includes(a.target as Constructor))
    .map((a) => {
      const base = storage.controllers.find((c) => c.target === a.target)?.route ?? '';
      return `${a.type.toUpperCase()} ${`${base}/${String(a.route ?? '')}`.replace(/\/+/g, '/')}`;
    });
}

function controllersListener(controllers: Constructor[], logger: Logger): RequestListener {
  const app = new Koa();
  // Errors are answered and logged here, not by routing-controllers (whose default handler sends
  // stacks outside production) nor printed by Koa.
  app.silent = true;
  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      const { status, body } = describeThrown(error, logger.child({ request_id: ctx.get('x-request-id') }));
      ctx.status = status;
      ctx.type = 'application/json';
      ctx.body = body;
    }
  });
  useKoaServer(app, { controllers: controllers as unknown as Function[], defaultErrorHandler: false });
  const handler = app.callback();
  return (req, res) => {
    handler(req, res).catch((error: unknown) => sendThrown(res, error, logger));
  };
}

/**
 * Loads a function: sets its env, imports its module (ESM or CommonJS), and finds what to serve —
 * exported routing-controllers controllers, else the named or default exported function.
 */
export async function loadFunction(request: LoadRequest, logger: Logger): Promise<LoadedFunction> {
  const entry = resolveEntry(request.root, request.entrypoint);
  for (const [name, value] of Object.entries(request.env ?? {})) process.env[name] = value;
  const mod = (await import(pathToFileURL(entry.file).href)) as Record<string, unknown>;
  if (entry.exportName !== undefined) {
    const chosen = mod[entry.exportName] ?? (mod.default as Record<string, unknown> | undefined)?.[entry.exportName];
    if (chosen === undefined) {
      throw new LoadError('PILOTLIGHT_NO_HANDLER', `${entry.file} has no export named "${entry.exportName}"`);
    }
    const asController = controllersIn([chosen]);
    if (asController.length > 0) {
      return { kind: 'controllers', listener: controllersListener(asController, logger), routes: routesOf(asController) };
    }
    if (typeof chosen !== 'function') {
      throw new LoadError('PILOTLIGHT_NO_HANDLER', `export "${entry.exportName}" of ${entry.file} is not a function`);
    }
    return { kind: 'handler', listener: plainListener(chosen as PlainHandler, request.function, logger), routes: ['* /'] };
  }
  const controllers = controllersIn(exportedValues(mod));
  if (controllers.length > 0) {
    return { kind: 'controllers', listener: controllersListener(controllers, logger), routes: routesOf(controllers) };
  }
  const handler = typeof mod.default === 'function' ? mod.default : mod.handler;
  if (typeof handler !== 'function') {
    throw new LoadError(
      'PILOTLIGHT_NO_HANDLER',
      `${entry.file} exports no handler: export a class decorated with @Controller, or a default function (request, context) => response`,
    );
  }
  return { kind: 'handler', listener: plainListener(handler as PlainHandler, request.function, logger), routes: ['* /'] };
}
