import { Context, Controller, Get, type InvocationContext, Schedule } from '@pilotlight/sdk';

/**
 * A scheduled task: `purge` runs every 15 minutes when a cron connector calls it (the watchdog
 * publishes the schedule at `GET /_/schedules`); `GET /status` reports the last run.
 */
@Controller('/')
export class CleanupFunction {
  #lastRun: { at: string; purged: number } | undefined;

  @Schedule('*/15 * * * *', { name: 'purge' })
  async purge(ctx: InvocationContext): Promise<{ purged: number }> {
    const purged = 3;
    this.#lastRun = { at: new Date().toISOString(), purged };
    ctx.logger.info({ purged }, 'purged expired sessions');
    return { purged };
  }

  @Get('status')
  status(@Context() ctx: InvocationContext) {
    return { lastRun: this.#lastRun ?? null, function: ctx.functionName };
  }
}
