import { rmSync, writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Lifecycle } from './lifecycle.js';

/**
 * The OpenFaaS lock file: present exactly while the instance is ready, so exec readiness checks
 * (`cat /tmp/.lock`) see what `/_/ready` says. One left by an earlier run that was killed is
 * removed at start; a restart of the function removes it until the function answers again.
 */
export function maintainLockFile(path: string, lifecycle: Lifecycle, logger: Logger): void {
  const update = (ready: boolean) => {
    try {
      if (ready) writeFileSync(path, '');
      else rmSync(path, { force: true });
    } catch (error) {
      logger.warn({ err: error, path, code: 'PILOTLIGHT_LOCK_FILE_FAILED' }, `could not update the lock file ${path}: ${(error as Error).message}`);
    }
  };
  update(false);
  lifecycle.on('change', (state) => update(state === 'ready'));
}
