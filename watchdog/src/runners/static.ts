import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import send from 'send';
import { WatchdogError } from '../errors.js';
import type { Invocation } from '../invocation.js';
import type { Runner } from './runner.js';

/**
 * `static` mode: serves files from one directory with `send` (ranges, ETags, conditional
 * requests, `index.html`, no dotfiles, no request path escaping the root). Symbolic links are followed: the
 * directory is the function author's, and what it links to is theirs to choose.
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
    invocation.setResponseHeaders(res);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return Promise.reject(
        new WatchdogError('PILOTLIGHT_METHOD_NOT_ALLOWED', `static files are read with GET or HEAD, not ${req.method}`, {
          allow: 'GET, HEAD',
        }),
      );
    }
    // The path as sent (send decodes and normalises it): parsed as a URL, `//sub/x` would make
    // `sub` a host name and serve `/x` instead.
    const path = (req.url ?? '/').split('?', 1)[0] as string;
    return new Promise((resolve, reject) => {
      const file = send(req, path, { root: this.root, index: ['index.html'], dotfiles: 'ignore' });
      // Only regular files are served. send opens whatever it stats, and opening a FIFO blocks
      // until something writes to it: on libuv's thread pool, four such requests would stall
      // every file operation of the watchdog. Its stat is checked here, before the open.
      const sendStat = file.send;
      file.send = function sendRegular(this: typeof file, found: string, info: Stats) {
        if (!info.isFile()) return this.error(404);
        return sendStat.call(this, found, info);
      };
      file.on('error', (error: { status?: number; message: string; headers?: Record<string, string> }) => {
        if (invocation.aborted) return resolve();
        const status = error.status ?? 500;
        if (status === 412 || status === 416) {
          // Answers to the client's own If-Match / Range, as much a part of serving files as a
          // 304: plain HTTP with send's headers (Content-Range), not a watchdog error.
          res.writeHead(status, { ...error.headers, 'content-length': 0 });
          res.end();
          return;
        }
        reject(
          // 400 (malformed path) and 403 (a `..` that only appears once decoded, as in `..%2f`)
          // name no file under the root either; a 500 would blame the watchdog for the request.
          status >= 400 && status < 500
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
