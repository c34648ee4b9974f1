import { request, type RequestListener } from 'node:http';
import { fileURLToPath } from 'node:url';
import { loadFunction } from './load.js';

/** The directory of the runtime's own warm-up function (warm/index.ts). */
const WARM_FUNCTION = fileURLToPath(new URL('./warm/', import.meta.url));

/**
 * Loads the warm-up function the way a user's is loaded: imported through the ESM loader and
 * the shared-package resolve hook, served by the SDK's stack (invocation context, Koa,
 * routing-controllers).
 */
export async function warmupListener(): Promise<RequestListener> {
  return (await loadFunction({ root: WARM_FUNCTION, function: 'pilotlight-warm-up' })).listener;
}

function send(socketPath: string, path: string, headers: Record<string, string>, body: string | undefined): Promise<void> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path, method: 'POST', headers }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', () => resolve());
    req.end(body);
  });
}

/**
 * Sends requests over the runtime's own socket, so that the first request of the real function
 * does not pay for compiling Node's HTTP server, the SDK's stack and routing-controllers' paths:
 * one with a JSON body, one without (the two ways through Koa's body parsing).
 */
export async function warmUp(socketPath: string): Promise<void> {
  await send(socketPath, '/_pilotlight_warmup/?n=1', { name: 'warm', 'content-type': 'application/json' }, '{"warm":true}');
  await send(socketPath, '/_pilotlight_warmup/', { name: 'warm' }, undefined);
}
