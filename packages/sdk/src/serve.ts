/**
 * `@pilotlight/sdk/serve`: how a loaded module becomes something to serve. Used by the Node
 * runtime and by the `testing` entry; function code does not need it.
 */
export { FunctionShapeError, serveModule } from './serve/function.js';
export type { PublishedSchedule, ServedFunction } from './serve/function.js';
export { createContext, withInvocation } from './serve/invocation.js';
export type { FunctionInfo } from './serve/invocation.js';
export { SCHEDULE_PATH } from './serve/schedules.js';
