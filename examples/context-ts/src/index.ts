import { Context, Controller, type InvocationContext, Post, QueryParam } from '@pilotlight/sdk';

/**
 * Uses the invocation context: logs through the context's logger (its lines carry the request and
 * trace ids) and works in steps only while the deadline leaves time for another.
 */
@Controller('/')
export class BatchFunction {
  @Post('/')
  async run(@QueryParam('steps') steps: number, @Context() ctx: InvocationContext) {
    const stepMs = 20;
    let done = 0;
    while (done < (steps || 5) && ctx.remainingMs() > stepMs * 2) {
      await new Promise((resolve) => setTimeout(resolve, stepMs));
      done += 1;
      ctx.logger.debug({ done }, 'step finished');
    }
    ctx.logger.info({ done, requestId: ctx.requestId }, 'batch finished');
    return { done, traceId: ctx.traceId, requestId: ctx.requestId, stoppedEarly: done < (steps || 5) };
  }
}
