import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Invocation } from '../invocation.js';
import { failedExit, type RequestProcessOptions, startRequestProcess } from '../process/request-process.js';
import type { Runner } from './runner.js';

/** Options of the fork modes. */
export interface ForkRunnerOptions extends RequestProcessOptions {
  readonly contentType: string;
}

/**
 * `serializing` mode: a process per request; its whole stdout, buffered, is the response body.
 * A non-zero exit is a 500 from the watchdog.
 */
export class SerializingRunner implements Runner {
  readonly healthy = true;

  constructor(private readonly options: ForkRunnerOptions) {}

  async start(): Promise<void> {}

  async handle(req: IncomingMessage, res: ServerResponse, invocation: Invocation): Promise<void> {
    invocation.setResponseHeaders(res);
    const logger: Logger = invocation.log();
    const { child, done } = startRequestProcess(req, invocation, this.options, logger);
    const chunks: Buffer[] = [];
    child.stdout!.on('data', (chunk: Buffer) => chunks.push(chunk));
    const { code, signal } = await done;
    if (invocation.aborted) return;
    if (code !== 0) throw failedExit(code, signal, invocation.id);
    const body = Buffer.concat(chunks);
    res.writeHead(200, { 'content-type': this.options.contentType, 'content-length': body.length });
    res.end(body);
  }

  async stop(): Promise<void> {}
}
