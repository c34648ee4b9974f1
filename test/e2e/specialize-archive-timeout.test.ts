import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ArchiveEntry, type ArchiveFormat, type CodeServer, makeArchive, sha256, startArchiveSetup } from '../support/archives.js';
import { expectError, expectGeneric, specialize } from '../support/specialize.js';
import { killAll, type RunningWatchdog } from '../support/watchdog.js';

// An archive that takes longer to extract than PILOTLIGHT_SPECIALIZE_TIMEOUT allows: the request
// gets its 504 at the deadline, and the extraction it abandoned must neither go on writing nor
// leave its directory behind. The watchdog gets a private tmpdir so that can be seen.
const TMP = mkdtempSync(join(tmpdir(), 'pilotlight-e2e-archive-timeout-'));
// Far more files than any machine extracts in PILOTLIGHT_SPECIALIZE_TIMEOUT: the listing pass
// alone takes longer on a fast one.
const ENTRIES = 20_000;
const FORMATS: ArchiveFormat[] = ['tar.gz', 'zip'];

let watchdog: RunningWatchdog;
let codeServer: CodeServer;

beforeAll(async () => {
  ({ watchdog, codeServer } = await startArchiveSetup(TMP, {
    PILOTLIGHT_SPECIALIZE_TIMEOUT: '100ms',
    PILOTLIGHT_MAX_CODE_ENTRIES: String(ENTRIES + 10),
  }));
});

afterAll(async () => {
  await killAll();
  await codeServer?.close();
  rmSync(TMP, { recursive: true, force: true });
});

/** Thousands of small files: each is a mkdir, an open, a write and a close to extract. */
function slowArchive(format: ArchiveFormat): Buffer {
  const entries: ArchiveEntry[] = [{ name: 'index.mjs', data: 'export default () => "late";\n' }];
  for (let i = 0; i < ENTRIES; i += 1) entries.push({ name: `lib/${i % 50}/file-${i}.js`, data: `export const n = ${i};\n` });
  return makeArchive(format, entries);
}

const extractionDirs = () => readdirSync(TMP).filter((name) => name.startsWith('pilotlight-code-'));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The extraction directories in the watchdog's tmpdir, polled until there are none (or 10 s
 * pass), then looked at once more a little later: a writer still running would create the
 * directory again under the cleanup, as tar's own extraction did.
 */
async function leftoverDirs(): Promise<string[]> {
  const deadline = Date.now() + 10_000;
  while (extractionDirs().length > 0 && Date.now() < deadline) await sleep(50);
  await sleep(500);
  return extractionDirs();
}

describe.each(FORMATS)('a %s archive still extracting at PILOTLIGHT_SPECIALIZE_TIMEOUT', (format) => {
  it('gets 504, and the abandoned extraction deletes its directory', async () => {
    const answer = await specialize(watchdog, { archive: slowArchive(format).toString('base64'), format });
    expectError(answer, 504, 'PILOTLIGHT_SPECIALIZE_TIMEOUT');
    expect(await leftoverDirs()).toEqual([]);
    await expectGeneric(watchdog);
  });
});

describe('a url archive still extracting at PILOTLIGHT_SPECIALIZE_TIMEOUT', () => {
  it('gets 504 and leaves no directory', async () => {
    const archive = slowArchive('zip');
    codeServer.serve('/slow.zip', archive);
    expectError(await specialize(watchdog, { url: `${codeServer.url}/slow.zip`, sha256: sha256(archive) }), 504, 'PILOTLIGHT_SPECIALIZE_TIMEOUT');
    expect(await leftoverDirs()).toEqual([]);
    await expectGeneric(watchdog);
  });
});
