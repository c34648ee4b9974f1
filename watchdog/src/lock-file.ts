import { rmSync, writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Lifecycle } from './lifecycle.js';

/**
 * The OpenFaaS lock file: present while the instance is ready, so exec health checks
 * (`cat /tmp/.lock`) see readiness; removed when draining or failed.
 */
export function maintainLockFile(path: string, lifecycle: Lifecycle, logger: Logger): void {
  lifecycle.on('change', (state) => {
    try {
      if (state === 'ready') writeFileSync(path, '');
      else if (state === 'draining' || state === 'failed') rmSync(path, { force: true });
    } catch (error) {
      logger.warn({ err: error, path, code: 'PILOTLIGHT_LOCK_FILE_FAILED' }, `could not update the lock file ${path}: ${(error as Error).message}`);
    }
  });
}
