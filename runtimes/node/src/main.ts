import { rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import { logger, setHintSink } from '@pilotlight/logger';
import type { ServedFunction } from '@pilotlight/sdk/serve';
import { ControlChannel, type Message } from './control.js';
import { LoadError } from './entry.js';
import { loadFunction, loadRequestOf } from './load.js';
import { shareRuntimePackages } from './shared-modules.js';
import { warmUp, warmupListener } from './warmup.js';

/** Answered by the runtime itself (docs/runtime-protocol.md). */
const WATCHDOG_WARM_PATH = '/_pilotlight/warm';

/** Protocol version this runtime speaks (docs/runtime-protocol.md). */
const PROTOCOL = 1;

/**
 * Imports, ahead of any user code, what every function needs, so that loading a function later
 * costs only the function's own module (warmup.ts then runs all of it once).
 */
async function preload(): Promise<void> {
  // Specifiers in variables: some of these ship no types, and only their loading matters here.
  const modules = ['@pilotlight/sdk', 'koa', '@koa/router', 'koa-bodyparser', 'class-transformer', 'class-validator'];
  await Promise.all(modules.map((name) => import(name)));
  // Node loads perf_hooks on the first use of the global `performance`, a millisecond that would
  // otherwise fall on the first load.
  performance.now();
}

/**
 * Hands one request to the function's listener. A throw out of it (the listeners catch what the
 * function does; this is for what they miss) fails that request alone: uncaught, it would end
 * the process and every request in flight with it.
 */
function serveOne(serve: RequestListener, req: IncomingMessage, res: ServerResponse): void {
  try {
    serve(req, res);
  } catch (error) {
    logger.error({ err: error }, 'the request listener threw');
    if (res.headersSent) res.destroy();
    else res.writeHead(500, { 'content-type': 'application/json' }).end('{"message":"internal error"}');
  }
}

/**
 * The runtime process: listens on the Unix socket the watchdog named, says `hello` on the
 * control channel once pre-started, and loads a function when told to.
 */
export async function runRuntime(env: NodeJS.ProcessEnv): Promise<void> {
  const socketPath = env.PILOTLIGHT_RUNTIME_SOCKET;
  if (!socketPath) throw new Error('PILOTLIGHT_RUNTIME_SOCKET is not set: this runtime is started by the pilotlight watchdog');
  const control = new ControlChannel(Number(env.PILOTLIGHT_CONTROL_FD ?? 3));
  shareRuntimePackages();
  await preload();

  let serve: RequestListener | undefined;
  let loaded: ServedFunction | undefined;
  let loading = false;
  // The watchdog keeps its connections here for up to 10 minutes and closes them first.
  const server = createServer({ keepAliveTimeout: 660_000 }, (req, res) => {
    // The watchdog warms its own request path through here; never the function's code.
    if (req.url === WATCHDOG_WARM_PATH) res.writeHead(204).end();
    else if (serve) serveOne(serve, req, res);
    else res.writeHead(503, { 'content-type': 'application/json' }).end('{"message":"no function loaded"}');
  });
  // A socket file left by a crashed predecessor would make listen fail with EADDRINUSE.
  rmSync(socketPath, { force: true });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  serve = await warmupListener();
  await warmUp(socketPath);
  serve = undefined;

  const load = async (message: Message) => {
    if (serve || loading) {
      control.send({ type: 'error', id: message.id, code: 'PILOTLIGHT_ALREADY_LOADED', message: 'a function is already loaded' });
      return;
    }
    loading = true;
    const started = performance.now();
    try {
      loaded = await loadFunction(loadRequestOf(message));
      serve = loaded.listener;
      control.send({
        type: 'loaded',
        id: message.id,
        ms: performance.now() - started,
        kind: loaded.kind,
        routes: loaded.routes,
        schedules: loaded.schedules,
      });
    } catch (error) {
      const err = error as Error;
      control.send({
        type: 'error',
        id: message.id,
        code: error instanceof LoadError ? error.code : 'PILOTLIGHT_LOAD_FAILED',
        message: err?.message ?? String(error),
        stack: err?.stack,
      });
    } finally {
      loading = false;
    }
  };

  // Pre-stop hooks run once: on the watchdog's `stop` (which says how much grace is left) or,
  // failing that, on SIGTERM with a default grace.
  let stopping: Promise<void> | undefined;
  const stop = (graceMs: number) => {
    stopping ??= (async () => {
      server.close();
      server.closeIdleConnections();
      try {
        await loaded?.preStop(graceMs);
      } catch (error) {
        logger.error({ err: error }, 'a pre-stop hook failed');
      }
    })();
    return stopping;
  };
  control.on('message', (message) => {
    if (message.type === 'ping') control.send({ type: 'pong', id: message.id });
    else if (message.type === 'load') void load(message);
    else if (message.type === 'stop') void stop(Number(message.graceMs) || 10_000);
  });
  // The watchdog going away (even by SIGKILL) closes the channel: never outlive it.
  control.on('close', () => process.exit(0));
  process.on('SIGTERM', () => {
    void stop(10_000).then(() => process.exit(0));
  });
  setHintSink((hint) => control.send({ type: 'hint', ...hint }));
  control.send({ type: 'hello', protocol: PROTOCOL, runtime: 'node', version: process.version, pid: process.pid });
}
