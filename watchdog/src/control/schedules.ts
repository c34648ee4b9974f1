import type { FunctionSchedule } from '../runners/runtime.js';

/** The path the runtime routes a schedule's trigger on (the SDK's `SCHEDULE_PATH`). */
const SCHEDULE_PATH = '/_pilotlight/schedule/';

/**
 * `GET /_/schedules`: the function's `@Schedule`s, each with what a platform's cron connector
 * needs to call it — so the connector can be configured from the function instead of by hand.
 */
export function describeSchedules(functionName: string | undefined, schedules: readonly FunctionSchedule[]): object {
  const name = functionName ?? 'function';
  return {
    function: functionName ?? null,
    schedules: schedules.map((schedule) => {
      const path = `${SCHEDULE_PATH}${encodeURIComponent(schedule.name)}`;
      return {
        ...schedule,
        trigger: { path, header: { 'x-pilotlight-schedule': schedule.name } },
        openfaas: { annotations: { topic: 'cron-function', schedule: schedule.cron } },
        knative: {
          apiVersion: 'sources.knative.dev/v1',
          kind: 'PingSource',
          metadata: { name: `${name}-${schedule.name}`.toLowerCase().replace(/[^a-z0-9-]/g, '-') },
          spec: {
            schedule: schedule.cron,
            timezone: schedule.timezone,
            sink: { ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name }, uri: path },
          },
        },
      };
    }),
  };
}
