import { openSync } from 'node:fs';
import { createLogger } from '@pilotlight/logger';
import { Body, Controller, HeaderParam, Post, QueryParam } from '@pilotlight/sdk';
import { pino } from 'pino';

// Written like the function's own logger (pino into an asynchronous sonic-boom), so that a
// function's first log line does not compile that path, but into /dev/null: the warm-up must not
// show in the function's logs. The descriptor stays open for the life of the runtime.
const silent = createLogger({}, pino.destination({ dest: openSync('/dev/null', 'w'), sync: false }));

/**
 * The runtime's own function, loaded and called before any user code (see warmup.ts). It is
 * written as users write theirs (decorators compiled by TypeScript, with their type metadata), so
 * that everything but the user's own code has run before the first real request.
 */
@Controller('/_pilotlight_warmup')
export class WarmFunction {
  @Post('/')
  handle(@HeaderParam('name') name: string, @QueryParam('n') n: number, @Body() body: unknown): string {
    silent.info({ name, n }, 'warm-up');
    return `${name}${n}${JSON.stringify(body)}`;
  }
}
