import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WatchdogError } from '../src/errors.js';
import { materialize } from '../src/specialize/source.js';

// Running as root in CI, a read-only directory would still be writable; a TMPDIR that is a file
// fails for everyone, with the same kind of error a full or read-only disk gives.
describe('code that cannot be written', () => {
  const originalTmp = process.env.TMPDIR;
  const scratch = mkdtempSync(join(tmpdir(), 'pilotlight-unit-'));
  afterEach(() => {
    process.env.TMPDIR = originalTmp;
  });

  it('is PILOTLIGHT_CODE_UNWRITABLE naming the tmpdir and the system error, not PILOTLIGHT_INTERNAL', async () => {
    const notADirectory = join(scratch, 'a-file');
    writeFileSync(notADirectory, 'not a directory\n');
    process.env.TMPDIR = notADirectory;
    const limits = { maxBytes: 1024 * 1024, maxEntries: 10 };
    const error = await materialize({ archive: Buffer.from('any bytes').toString('base64'), format: 'zip' }, limits, new AbortController().signal).then(
      () => undefined,
      (failure: unknown) => failure,
    );
    rmSync(scratch, { recursive: true, force: true });
    expect(error).toBeInstanceOf(WatchdogError);
    expect((error as WatchdogError).code).toBe('PILOTLIGHT_CODE_UNWRITABLE');
    expect((error as WatchdogError).status).toBe(500);
    expect((error as WatchdogError).message).toContain(notADirectory);
    expect((error as WatchdogError).message).toContain('ENOTDIR');
  });
});
