import type { RequestListener } from 'node:http';
import { logger } from '@pilotlight/logger';
import Koa from 'koa';
import bodyParser from 'koa-bodyparser';
import { getFromContainer, getMetadataArgsStorage, useKoaServer } from 'routing-controllers';
import { currentContext, type InvocationContext } from '../context.js';
import { type PreStopInfo, registeredHooks } from '../hooks.js';
import { registeredSchedules, type ScheduleEntry } from '../schedule.js';
import { describeThrown, headersOf, sendThrown } from './errors.js';
import { type FunctionInfo, withInvocation } from './invocation.js';
import { type PlainHandler, plainListener, writeResult } from './plain.js';
import { matchSchedule } from './schedules.js';

/** A module that cannot be served, for a reason its author can fix; `code` is stable. */
export class FunctionShapeError extends Error {
  constructor(
    readonly code: 'PILOTLIGHT_NO_HANDLER' | 'PILOTLIGHT_INITIALIZER_FAILED',
    message: string,
  ) {
    super(message);
    this.name = 'FunctionShapeError';
  }
}

/** A schedule as the watchdog publishes it. */
export interface PublishedSchedule {
  readonly name: string;
  readonly cron: string;
  readonly timezone: string;
}

/** A function ready to serve: what the runtime and the testing entry both use. */
export interface ServedFunction {
  readonly kind: 'controllers' | 'handler';
  readonly listener: RequestListener;
  /** `METHOD /path` of every route. */
  readonly routes: readonly string[];
  readonly schedules: readonly PublishedSchedule[];
  /** Runs the initializer hooks; rejects with `PILOTLIGHT_INITIALIZER_FAILED`. */
  initialize(): Promise<void>;
  /** Runs the pre-stop hooks within `graceMs`. */
  preStop(graceMs: number): Promise<void>;
}

type Constructor = abstract new (...args: never[]) => unknown;
type Hook = () => unknown;

/** Every value a module exports, looking inside a CommonJS `module.exports` object too. */
function exportedValues(mod: Record<string, unknown>): unknown[] {
  const values = Object.values(mod);
  const def = mod.default;
  if (def !== null && typeof def === 'object') values.push(...Object.values(def));
  return values;
}

/** Classes with routing-controllers' @Controller metadata, found by identity, never by file glob. */
function controllersIn(values: readonly unknown[]): Constructor[] {
  const registered = new Set<unknown>(getMetadataArgsStorage().controllers.map((c) => c.target));
  return [...new Set(values)].filter((v): v is Constructor => typeof v === 'function' && registered.has(v));
}

function routesOf(controllers: readonly Constructor[]): string[] {
  const storage = getMetadataArgsStorage();
  return storage.actions
    .filter((a) => controllers.includes(a.target as Constructor))
    .map((a) => {
      const base = storage.controllers.find((c) => c.target === a.target)?.route ?? '';
      return `${a.type.toUpperCase()} ${`/${base}/${String(a.route ?? '')}`.replace(/\/+/g, '/').replace(/(.)\/$/, '$1')}`;
    });
}

async function instanceOf(target: Function): Promise<Record<string | symbol, (...args: unknown[]) => unknown>> {
  return (await getFromContainer(target as never)) as Record<string | symbol, (...args: unknown[]) => unknown>;
}

const joinedActions = new WeakSet<object>();

/**
 * routing-controllers joins a controller's route and an action's by concatenation, so
 * `@Controller('/')` with `@Get('/status')` would serve `//status` and never `/status`, the route
 * {@link routesOf} reports. Drops an action's leading slash where its controller's route ends in one.
 */
function joinRoutes(controllers: readonly Constructor[]): void {
  const storage = getMetadataArgsStorage();
  for (const action of storage.actions) {
    if (joinedActions.has(action) || !controllers.includes(action.target as Constructor)) continue;
    joinedActions.add(action);
    const base = storage.controllers.find((c) => c.target === action.target)?.route;
    if (typeof action.route === 'string' && action.route.startsWith('/') && typeof base === 'string' && base.endsWith('/')) {
      action.route = action.route.slice(1);
    }
  }
}

function koaListener(controllers: readonly Constructor[]): RequestListener {
  joinRoutes(controllers);
  const app = new Koa();
  // Errors are answered and logged here, not by routing-controllers (whose default handler sends
  // stacks outside production) nor printed by Koa.
  app.silent = true;
  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      const { status, body } = describeThrown(error, currentContext()?.logger ?? logger);
      if (ctx.headerSent) {
        // Part of the response is out: the client can only learn of the failure by the cut.
        ctx.res.destroy();
        return;
      }
      // Headers the action set before it threw (caching, cookies) describe the answer it did not
      // give; the error's own (Retry-After, WWW-Authenticate) go out instead.
      for (const name of ctx.res.getHeaderNames()) ctx.res.removeHeader(name);
      ctx.set(headersOf(error));
      ctx.status = status;
      ctx.type = 'application/json';
      ctx.body = body;
    }
  });
  // routing-controllers installs koa-bodyparser with its defaults (1 MB of JSON, 56 KB of form),
  // which would refuse with 413 bodies the watchdog's max_body_size (64 MiB by default) lets
  // through. Parsed here first, its parser has nothing left to do; the watchdog bounds the size
  // (1 TB stands for no limit of the SDK's own).
  app.use(bodyParser({ jsonLimit: '1tb', formLimit: '1tb', textLimit: '1tb' }));
  useKoaServer(app, { controllers: controllers as unknown as Function[], defaultErrorHandler: false });
  const handler = app.callback();
  return (req, res) => {
    handler(req, res).catch((error: unknown) => sendThrown(res, error, logger));
  };
}

/** Puts schedule calls in front of a listener. */
function withSchedules(listener: RequestListener, schedules: readonly ScheduleEntry[]): RequestListener {
  if (schedules.length === 0) return listener;
  return (req, res) => {
    const schedule = matchSchedule(req, schedules);
    if (!schedule) {
      listener(req, res);
      return;
    }
    const context = currentContext() as InvocationContext;
    req.resume();
    instanceOf(schedule.target)
      .then((instance) => (instance[schedule.method] as (ctx: InvocationContext) => unknown).call(instance, context))
      .then((result) => writeResult(res, result))
      .catch((error: unknown) => sendThrown(res, error, context.logger));
  };
}

async function runHooks(hooks: readonly Hook[], kind: string): Promise<void> {
  for (const hook of hooks) {
    try {
      await hook();
    } catch (error) {
      if (kind !== 'initializer') throw error;
      throw new FunctionShapeError('PILOTLIGHT_INITIALIZER_FAILED', `the initializer failed: ${(error as Error)?.message ?? String(error)}`);
    }
  }
}

function preStopInfo(graceMs: number): PreStopInfo {
  const deadline = new Date(Date.now() + graceMs);
  return { deadline, remainingMs: () => Math.max(0, deadline.getTime() - Date.now()), logger };
}

function served(
  kind: ServedFunction['kind'],
  inner: RequestListener,
  routes: string[],
  schedules: readonly ScheduleEntry[],
  initializers: readonly Hook[],
  preStops: readonly ((info: PreStopInfo) => unknown)[],
  info: FunctionInfo,
): ServedFunction {
  return {
    kind,
    listener: withInvocation(withSchedules(inner, schedules), info),
    routes,
    schedules: schedules.map(({ name, cron, timezone }) => ({ name, cron, timezone })),
    initialize: () => runHooks(initializers, 'initializer'),
    preStop: async (graceMs) => {
      const infoForHooks = preStopInfo(graceMs);
      await runHooks(preStops.map((hook) => () => hook(infoForHooks)), 'preStop');
    },
  };
}

function servedControllers(controllers: readonly Constructor[], info: FunctionInfo): ServedFunction {
  const hooks = registeredHooks().filter((h) => controllers.includes(h.target as Constructor));
  const call = (h: (typeof hooks)[number]) => async (arg?: unknown) => {
    const instance = await instanceOf(h.target);
    return (instance[h.method] as (a?: unknown) => unknown).call(instance, arg);
  };
  return served(
    'controllers',
    koaListener(controllers),
    routesOf(controllers),
    registeredSchedules().filter((s) => controllers.includes(s.target as Constructor)),
    hooks.filter((h) => h.kind === 'initializer').map((h) => () => call(h)()),
    hooks.filter((h) => h.kind === 'preStop').map((h) => (infoForHook: PreStopInfo) => call(h)(infoForHook)),
    info,
  );
}

function servedHandler(handler: PlainHandler, mod: Record<string, unknown>, info: FunctionInfo): ServedFunction {
  const initialize = typeof mod.initialize === 'function' ? [mod.initialize as Hook] : [];
  const preStop = typeof mod.preStop === 'function' ? [mod.preStop as (i: PreStopInfo) => unknown] : [];
  return served('handler', plainListener(handler), ['* /'], [], initialize, preStop, info);
}

/**
 * Finds what a module serves: the exported routing-controllers controller classes, else the
 * export named by `exportName`, else a default-exported function (or one named `handler`).
 * A plain module may also export `initialize()` and `preStop(info)` hooks.
 *
 * @throws {FunctionShapeError} `PILOTLIGHT_NO_HANDLER` when there is nothing to serve.
 */
export function serveModule(mod: Record<string, unknown>, exportName: string | undefined, info: FunctionInfo, where: string): ServedFunction {
  if (exportName !== undefined) {
    const chosen = mod[exportName] ?? (mod.default as Record<string, unknown> | undefined)?.[exportName];
    if (chosen === undefined) throw new FunctionShapeError('PILOTLIGHT_NO_HANDLER', `${where} has no export named "${exportName}"`);
    const asController = controllersIn([chosen]);
    if (asController.length > 0) return servedControllers(asController, info);
    if (typeof chosen !== 'function') {
      throw new FunctionShapeError('PILOTLIGHT_NO_HANDLER', `export "${exportName}" of ${where} is not a function`);
    }
    return servedHandler(chosen as PlainHandler, mod, info);
  }
  const controllers = controllersIn(exportedValues(mod));
  if (controllers.length > 0) return servedControllers(controllers, info);
  const handler = typeof mod.default === 'function' ? mod.default : mod.handler;
  if (typeof handler !== 'function') {
    throw new FunctionShapeError(
      'PILOTLIGHT_NO_HANDLER',
      `${where} exports no handler: export a class decorated with @Controller, or a default function (request, context) => response`,
    );
  }
  return servedHandler(handler as PlainHandler, mod, info);
}
