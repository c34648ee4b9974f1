/**
 * Pilotlight's watchdog as a library: the configuration loader, the error catalogue and the
 * watchdog itself, for embedding and for tests. The container entrypoint is `bin/pilotlight.js`.
 */
export { loadConfig, ConfigError, helpText } from './config/load.js';
export { SETTINGS, MODES } from './config/settings.js';
export type { Config, Mode, Setting } from './config/settings.js';
export { ERRORS, ERROR_HEADER, WatchdogError } from './errors.js';
export type { ErrorCode } from './errors.js';
export { Watchdog } from './watchdog.js';
export type { WatchdogDeps } from './watchdog.js';
