import { request } from 'node:http';
import Koa from 'koa';
import { Body, Controller, HeaderParam, Post, QueryParam, useKoaServer } from 'routing-controllers';
import type { RequestListener } from 'node:http';

/** A controller that exists only to run routing-controllers' request path once before any user code. */
class WarmupController {
  handle(name: string, verbose: string | undefined, body: unknown): string {
    return `${name}${verbose ?? ''}${JSON.stringify(body)}`;
  }
}

// Decorators are plain functions; applied by hand, the runtime needs no decorator compilation.
Controller('/_pilotlight_warmup')(WarmupController);
const descriptor = Object.getOwnPropertyDescriptor(WarmupController.prototype, 'handle') as PropertyDescriptor;
Post('/')(WarmupController.prototype, 'handle', descriptor);
HeaderParam('name')(WarmupController.prototype, 'handle', 0);
QueryParam('verbose')(WarmupController.prototype, 'handle', 1);
Body()(WarmupController.prototype, 'handle', 2);

/** The Koa + routing-controllers listener the warm-up request goes through. */
export function warmupListener(): RequestListener {
  const app = new Koa();
  app.silent = true;
  useKoaServer(app, { controllers: [WarmupController], defaultErrorHandler: false });
  return app.callback();
}

/**
 * Sends one request over the runtime's own socket, so that the first request of the real
 * function does not pay for compiling Node's HTTP server, Koa and routing-controllers' paths.
 */
export function warmUp(socketPath: string): Promise<void> {
  return new Promise((resolve) => {
    const req = request(
      { socketPath, path: '/_pilotlight_warmup/?verbose=1', method: 'POST', headers: { name: 'warm', 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', resolve);
      },
    );
    req.on('error', () => resolve());
    req.end('{"warm":true}');
  });
}
