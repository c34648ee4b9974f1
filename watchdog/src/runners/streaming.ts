import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Invocation } from '../invocation.js';
import { failedExit, startRequestProcess } from '../process/request-process.js';
import type { Runner } from './runner.js';
import type { ForkRunnerOptions } from './serializing.js';

/**
 * `streaming` mode: a process per request; the body streams to its stdin and its stdout streams
 * back as it is written, with backpressure both ways so memory stays flat whatever the size.
 * The status is sent with the first byte of output, so a process that fails before writing
 * anything still gets a proper 500; one that fails later has its response cut, not completed.
 */
export class StreamingRunner implements Runner {
  readonly healthy = true;

  constructor(private readonly options: ForkRunnerOptions) {}

  async start(): Promise<void> {}

  async handle(req: IncomingMessage, res: ServerResponse, invocation: Invocation): Promise<void> {
    invocation.setResponseHeaders(res);
    const { child, done } = startRequestProcess(req, invocation, this.options, invocation.log());
    const stdout = child.stdout!;
    stdout.once('data', (first: Buffer) => {
      if (invocation.aborted) return;
      res.writeHead(200, { 'content-type': this.options.contentType });
      res.write(first);
      stdout.pipe(res, { end: false });
    });
    const { code, signal } = await done;
    if (invocation.aborted) return;
    if (code !== 0) {
      if (res.headersSent) res.destroy();
      else throw failedExit(code, signal, invocation.id);
      return;
    }
    if (!res.headersSent) res.writeHead(200, { 'content-type': this.options.contentType });
    res.end();
  }

  async stop(): Promise<void> {}
}
