import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Invocation } from '../invocation.js';
import { failedExit, type RequestProcessOptions, startRequestProcess } from '../process/request-process.js';
import type { Runner } from './runner.js';
import { WatchdogError } from '../errors.js';

/** Options of the fork modes. */
export interface ForkRunnerOptions extends RequestProcessOptions {
  readonly contentType: string;
}

/** Options of `serializing` mode. */
export interface SerializingRunnerOptions extends ForkRunnerOptions {
  /** Most bytes of stdout buffered for one response; 0: no limit. */
  readonly maxResponseSize: number;
}

/**
 * `serializing` mode: a process per request; its whole stdout, buffered, is the response body.
 * A non-zero exit is a 500 from the watchdog, and so is more output than `max_response_size`:
 * buffered without a bound, one large answer could take the watchdog's memory and every request
 * in flight with it.
 */
export class SerializingRunner implements Runner {
  readonly healthy = true;

  constructor(private readonly options: SerializingRunnerOptions) {}

  async start(): Promise<void> {}

  async handle(req: IncomingMessage, res: ServerResponse, invocation: Invocation): Promise<void> {
    invocation.setResponseHeaders(res);
    const logger: Logger = invocation.log();
    const { child, done } = startRequestProcess(req, invocation, this.options, logger);
    const chunks: Buffer[] = [];
    const limit = this.options.maxResponseSize;
    let size = 0;
    const collect = (chunk: Buffer) => {
      size += chunk.length;
      if (limit === 0 || size <= limit) {
        chunks.push(chunk);
        return;
      }
      // What it writes until the kill lands is drained, not kept.
      child.stdout!.off('data', collect).resume();
      chunks.length = 0;
      invocation.abort(
        new WatchdogError(
          'PILOTLIGHT_RESPONSE_TOO_LARGE',
          `the function wrote more than max_response_size (${limit} bytes) to stdout and was stopped; use streaming mode for large responses, or raise the limit`,
        ),
      );
    };
    child.stdout!.on('data', collect);
    const { code, signal } = await done;
    if (invocation.aborted) return;
    if (code !== 0) throw failedExit(code, signal, invocation.id);
    const body = Buffer.concat(chunks);
    res.writeHead(200, { 'content-type': this.options.contentType, 'content-length': body.length });
    res.end(body);
  }

  async stop(): Promise<void> {}
}
