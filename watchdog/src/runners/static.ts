import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import send from 'send';
import { WatchdogError } from '../errors.js';
import type { Invocation } from '../invocation.js';
import type { Runner } from './runner.js';

/**
 * `static` mode: serves files from one directory with `send` (ranges, ETags, conditional
 * requests, `index.html`, no dotfiles, no path escaping the root).
 */
export class StaticRunner implements Runner {
  readonly healthy = true;

  constructor(private readonly root: string) {}

  async start(): Promise<void> {
    const info = await stat(this.root).catch(() => undefined);
    if (!info?.isDirectory()) {
      throw new WatchdogError(
        'PILOTLIGHT_START_FAILED',
        `static_path ${this.root} is not a directory: set PILOTLIGHT_STATIC_PATH to the folder to serve`,
      );
    }
  }

  handle(req: IncomingMessage, res: ServerResponse, invocation: Invocation): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return Promise.reject(
        new WatchdogError('PILOTLIGHT_METHOD_NOT_ALLOWED', `static files are read with GET or HEAD, not ${req.method}`, {
          allow: 'GET, HEAD',
        }),
      );
    }
    const path = new URL(req.url ?? '/', 'http://static').pathname;
    return new Promise((resolve, reject) => {
      const file = send(req, path, { root: this.root, index: ['index.html'], dotfiles: 'ignore' });
      file.on('error', (error: { status?: number; message: string }) => {
        if (invocation.signal.aborted) return resolve();
        reject(
          error.status === 404
            ? new WatchdogError('PILOTLIGHT_NOT_FOUND', `no file at ${path}`)
            : new WatchdogError('PILOTLIGHT_INTERNAL', `could not serve ${path}: ${error.message}`),
        );
      });
      res.once('close', () => resolve());
      file.pipe(res);
    });
  }

  async stop(): Promise<void> {}
}
