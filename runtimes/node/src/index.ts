/** The Node runtime as a library, for tests and embedding; the watchdog runs `bin/runtime.js`. */
export { runRuntime } from './main.js';
export { loadFunction } from './load.js';
export type { LoadRequest } from './load.js';
