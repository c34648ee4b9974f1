import type { IncomingMessage } from 'node:http';
import type { ScheduleEntry } from '../schedule.js';

/** The path prefix a connector can call to run a schedule by name. */
export const SCHEDULE_PATH = '/_pilotlight/schedule/';

/**
 * A schedule name from the path. A malformed escape (`%E0%A4%A`) names no schedule: taken as
 * sent, it matches none and the request goes on to the routes, rather than throwing out of the
 * request listener and taking the runtime down with every request in flight.
 */
function decodedName(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * Which schedule a request triggers, if any: by path (`/_pilotlight/schedule/<name>`), by the
 * `X-Pilotlight-Schedule` header, or — when the function has exactly one schedule — by the
 * marks the platforms' connectors leave: a Knative PingSource's CloudEvent type, Fission's timer
 * header, OpenFaaS's cron topic.
 */
export function matchSchedule(req: IncomingMessage, schedules: readonly ScheduleEntry[]): ScheduleEntry | undefined {
  if (schedules.length === 0) return undefined;
  const url = req.url ?? '/';
  const byName = url.startsWith(SCHEDULE_PATH)
    ? decodedName(url.slice(SCHEDULE_PATH.length).split('?', 1)[0] as string)
    : (req.headers['x-pilotlight-schedule'] as string | undefined);
  if (byName !== undefined) return schedules.find((s) => s.name === byName);
  if (schedules.length !== 1) return undefined;
  const headers = req.headers;
  const fromConnector =
    headers['ce-type'] === 'dev.knative.sources.ping' ||
    headers['x-fission-timer-name'] !== undefined ||
    headers['x-topic'] === 'cron-function' ||
    String(headers['user-agent'] ?? '').includes('cron-connector');
  return fromConnector ? schedules[0] : undefined;
}
