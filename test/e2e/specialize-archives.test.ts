import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ArchiveEntry, type ArchiveFormat, type CodeServer, entriesOf, makeArchive, sha256, startArchiveSetup } from '../support/archives.js';
import { callFunction, expectError, expectGeneric, expectHelloWorld, expectSpecialized, HELLO_TS, specialize } from '../support/specialize.js';
import { freePort, killAll, type RunningWatchdog, startWatchdog } from '../support/watchdog.js';

// The watchdog extracts into a fresh `pilotlight-code-*` directory under its tmpdir. It gets a
// private one, so that `../name` from there is a path this test can look at, and so that what a
// refused archive leaves behind, if anything, can be seen.
const TMP = mkdtempSync(join(tmpdir(), 'pilotlight-e2e-archives-'));
const MAX_ENTRIES = 20;
const MAX_SIZE = 256 * 1024;
const FORMATS: ArchiveFormat[] = ['tar.gz', 'zip'];

/** Paths an unsafe archive would have written; every one must still be absent at the end. */
const wouldBeWritten: string[] = [];
/** Paths this file created itself, removed at the end. */
const created: string[] = [TMP];

function unique(what: string): string {
  return `pilotlight-e2e-${what}-${randomUUID()}`;
}

const GOOD_MODULE: ArchiveEntry = { name: 'index.mjs', data: 'export default () => "fine";\n' };
const helloEntries = () => entriesOf(HELLO_TS, (name) => name === 'package.json' || /^dist\/index\.js$/.test(name));

let watchdog: RunningWatchdog;
let codeServer: CodeServer;

beforeAll(async () => {
  ({ watchdog, codeServer } = await startArchiveSetup(TMP, { PILOTLIGHT_MAX_CODE_ENTRIES: String(MAX_ENTRIES), PILOTLIGHT_MAX_CODE_SIZE: '256KiB' }));
});

afterAll(async () => {
  await killAll();
  await codeServer?.close();
  for (const path of created) rmSync(path, { recursive: true, force: true });
});

async function specializeArchive(format: ArchiveFormat, archive: Buffer) {
  return specialize(watchdog, { archive: archive.toString('base64'), format });
}

/** Whether anything exists at `path` (a dangling symlink counts). */
function present(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

describe.each(FORMATS)('a %s archive that would write outside its directory is refused whole', (format) => {
  it('with a ../ entry', async () => {
    const name = unique('dotdot');
    const target = join(TMP, name);
    wouldBeWritten.push(target);
    const archive = makeArchive(format, [GOOD_MODULE, { name: `../${name}`, data: 'escaped\n' }]);
    const answer = await specializeArchive(format, archive);
    expectError(answer, 400, 'PILOTLIGHT_ARCHIVE_UNSAFE');
    expect(answer.body.message).toContain(`../${name}`);
    expect(present(target)).toBe(false);
    await expectGeneric(watchdog);
  });

  it('with a ../ hidden deeper in the path', async () => {
    const name = unique('deep-dotdot');
    const target = join(TMP, name);
    wouldBeWritten.push(target);
    const archive = makeArchive(format, [GOOD_MODULE, { name: `lib/../../${name}`, data: 'escaped\n' }]);
    expectError(await specializeArchive(format, archive), 400, 'PILOTLIGHT_ARCHIVE_UNSAFE');
    expect(present(target)).toBe(false);
    await expectGeneric(watchdog);
  });

  it('with an absolute entry', async () => {
    const target = join(TMP, unique('absolute'));
    wouldBeWritten.push(target);
    const archive = makeArchive(format, [GOOD_MODULE, { name: target, data: 'absolute\n' }]);
    const answer = await specializeArchive(format, archive);
    expectError(answer, 400, 'PILOTLIGHT_ARCHIVE_UNSAFE');
    expect(present(target)).toBe(false);
    await expectGeneric(watchdog);
  });

  it('with a symlink entry (and a file written through it)', async () => {
    // The link points at an existing directory outside: following it would drop a file there.
    const outside = join(TMP, unique('symlink-target'));
    mkdirSync(outside);
    created.push(outside);
    wouldBeWritten.push(join(outside, 'evil.txt'));
    const archive = makeArchive(format, [
      GOOD_MODULE,
      { name: 'link', type: 'symlink', target: outside },
      { name: 'link/evil.txt', data: 'through the link\n' },
    ]);
    const answer = await specializeArchive(format, archive);
    expectError(answer, 400, 'PILOTLIGHT_ARCHIVE_UNSAFE');
    expect(answer.body.message).toContain('link');
    expect(readdirSync(outside)).toEqual([]);
    await expectGeneric(watchdog);
  });

  it('with only a symlink to a file outside', async () => {
    const archive = makeArchive(format, [{ name: 'index.mjs', type: 'symlink', target: '/etc/hostname' }]);
    expectError(await specializeArchive(format, archive), 400, 'PILOTLIGHT_ARCHIVE_UNSAFE');
    await expectGeneric(watchdog);
  });
});

describe.each(FORMATS)('a %s archive that cannot be read', (format) => {
  it('is refused as invalid when it is not an archive at all', async () => {
    const garbage = Buffer.from('this is not an archive, just text that happens to be base64-able\n'.repeat(8));
    expectError(await specializeArchive(format, garbage), 400, 'PILOTLIGHT_ARCHIVE_INVALID');
    await expectGeneric(watchdog);
  });

  it('is refused as invalid when it is truncated', async () => {
    const whole = makeArchive(format, helloEntries());
    const truncated = whole.subarray(0, Math.floor(whole.length / 2));
    expectError(await specializeArchive(format, truncated), 400, 'PILOTLIGHT_ARCHIVE_INVALID');
    await expectGeneric(watchdog);
  });

  it('is refused as invalid when a name is too long for the file system', async () => {
    const archive = makeArchive(format, [GOOD_MODULE, { name: `lib/${'x'.repeat(300)}.js`, data: 'export {};\n' }]);
    const answer = await specializeArchive(format, archive);
    expectError(answer, 400, 'PILOTLIGHT_ARCHIVE_INVALID');
    expect(answer.body.message).toContain('ENAMETOOLONG');
    await expectGeneric(watchdog);
  });

  it('is refused as invalid when one path would have to be both a file and a folder', async () => {
    const archive = makeArchive(format, [GOOD_MODULE, { name: 'lib', data: 'a file\n' }, { name: 'lib/util.js', data: 'export {};\n' }]);
    const answer = await specializeArchive(format, archive);
    expectError(answer, 400, 'PILOTLIGHT_ARCHIVE_INVALID');
    expect(answer.body.message).toContain('"lib" is both a file and a folder');
    await expectGeneric(watchdog);
  });

  it('is refused as invalid when it is the other format', async () => {
    const other = makeArchive(format === 'zip' ? 'tar.gz' : 'zip', helloEntries());
    expectError(await specializeArchive(format, other), 400, 'PILOTLIGHT_ARCHIVE_INVALID');
    await expectGeneric(watchdog);
  });
});

describe('a zip whose directory is sound but whose data is not', () => {
  it('is refused as invalid when an entry does not inflate, naming the entry', async () => {
    // The checking pass reads only the central directory; the data is found broken while
    // extracting. The first entry's data starts after the 30-byte local header and its name;
    // 0x07 there is a deflate block of the reserved type.
    const name = 'data.txt';
    const archive = makeArchive('zip', [{ name, data: 'hello '.repeat(1000) }, GOOD_MODULE]);
    archive[30 + name.length] = 0x07;
    const answer = await specializeArchive('zip', archive);
    expectError(answer, 400, 'PILOTLIGHT_ARCHIVE_INVALID');
    expect(answer.body.message).toContain(name);
    await expectGeneric(watchdog);
  });
});

describe.each(FORMATS)('a %s archive past the bounds', (format) => {
  it(`is refused with 413 when it has more than PILOTLIGHT_MAX_CODE_ENTRIES (${MAX_ENTRIES}) entries`, async () => {
    const entries: ArchiveEntry[] = [GOOD_MODULE];
    for (let i = 0; i < MAX_ENTRIES; i += 1) entries.push({ name: `lib/file-${i}.js`, data: `export const n = ${i};\n` });
    const answer = await specializeArchive(format, makeArchive(format, entries));
    expectError(answer, 413, 'PILOTLIGHT_CODE_TOO_LARGE');
    expect(answer.body.message).toMatch(/entries/);
    await expectGeneric(watchdog);
  });

  it('is refused with 413 when it unpacks to more than PILOTLIGHT_MAX_CODE_SIZE', async () => {
    // Zeros compress to almost nothing: the request is small, the extracted size is not.
    const archive = makeArchive(format, [GOOD_MODULE, { name: 'big.bin', data: Buffer.alloc(MAX_SIZE + 1024) }]);
    expect(archive.length).toBeLessThan(MAX_SIZE / 4);
    const answer = await specializeArchive(format, archive);
    expectError(answer, 413, 'PILOTLIGHT_CODE_TOO_LARGE');
    await expectGeneric(watchdog);
  });

  it('is refused with 413 when the archive itself is larger than PILOTLIGHT_MAX_CODE_SIZE', async () => {
    // Random bytes do not compress: the base64 in the body is past the limit.
    const archive = makeArchive(format, [GOOD_MODULE, { name: 'noise.bin', data: randomBytes(MAX_SIZE + 64 * 1024) }]);
    expect(archive.length).toBeGreaterThan(MAX_SIZE);
    expectError(await specializeArchive(format, archive), 413, 'PILOTLIGHT_CODE_TOO_LARGE');
    await expectGeneric(watchdog);
  });
});

describe('code fetched from a url', () => {
  it('is refused with 422 PILOTLIGHT_CHECKSUM_MISMATCH when its sha256 differs', async () => {
    const archive = makeArchive('tar.gz', helloEntries());
    codeServer.serve('/mismatch.tar.gz', archive);
    const wrong = sha256(Buffer.concat([archive, Buffer.from('x')]));
    const answer = await specialize(watchdog, { url: `${codeServer.url}/mismatch.tar.gz`, sha256: wrong });
    expectError(answer, 422, 'PILOTLIGHT_CHECKSUM_MISMATCH');
    expect(answer.body.message).toContain(sha256(archive));
    expect(codeServer.requests).toContain('/mismatch.tar.gz');
    await expectGeneric(watchdog);
  });

  it('is refused with 422 PILOTLIGHT_FETCH_FAILED when the url answers 404', async () => {
    const answer = await specialize(watchdog, { url: `${codeServer.url}/missing.tar.gz`, sha256: 'ab'.repeat(32) });
    expectError(answer, 422, 'PILOTLIGHT_FETCH_FAILED');
    expect(answer.body.message).toContain('404');
    await expectGeneric(watchdog);
  });

  it('is refused with 422 PILOTLIGHT_FETCH_FAILED when nothing listens there', async () => {
    const port = await freePort();
    const answer = await specialize(watchdog, { url: `http://127.0.0.1:${port}/code.zip`, sha256: 'cd'.repeat(32) });
    expectError(answer, 422, 'PILOTLIGHT_FETCH_FAILED');
    await expectGeneric(watchdog);
  });

  it('is checked like an inline archive: an unsafe one is refused, nothing written', async () => {
    const name = unique('url-dotdot');
    wouldBeWritten.push(join(TMP, name));
    const archive = makeArchive('zip', [GOOD_MODULE, { name: `../${name}`, data: 'escaped\n' }]);
    codeServer.serve('/unsafe.zip', archive);
    const answer = await specialize(watchdog, { url: `${codeServer.url}/unsafe.zip`, sha256: sha256(archive) });
    expectError(answer, 400, 'PILOTLIGHT_ARCHIVE_UNSAFE');
    expect(present(join(TMP, name))).toBe(false);
    await expectGeneric(watchdog);
  });
});

describe('after every refusal above', () => {
  it('nothing was written outside the extraction directory', () => {
    expect(wouldBeWritten.length).toBe(9);
    expect(wouldBeWritten.filter(present)).toEqual([]);
    expect(wouldBeWritten.filter((path) => existsSync(path))).toEqual([]);
  });

  it('no extraction directory was left behind by a refused archive', () => {
    expect(readdirSync(TMP).filter((name) => name.startsWith('pilotlight-code-'))).toEqual([]);
  });

  it('the same instance still specializes with a good archive and serves it', async () => {
    const answer = await specializeArchive('zip', makeArchive('zip', helloEntries()));
    expectSpecialized(answer);
    await expectHelloWorld(watchdog);
  });
});

describe.each(FORMATS)('a good %s archive is extracted as tar -x or unzip -o would', (format) => {
  it('keeps executable bits, and a later entry of the same name replaces the earlier one', async () => {
    const instance = await startWatchdog({ env: { PILOTLIGHT_RUNTIME: 'node', TMPDIR: TMP }, waitFor: 'listening' });
    await instance.waitForState('generic');
    const archive = makeArchive(format, [
      { name: 'index.mjs', data: 'export default () => "the stale entry";\n' },
      { name: 'bin/tool.sh', data: '#!/bin/sh\necho "the bundled tool ran"\n', mode: 0o755 },
      {
        name: 'index.mjs',
        data: [
          "import { execFileSync } from 'node:child_process';",
          "import { fileURLToPath } from 'node:url';",
          "export default () => execFileSync(fileURLToPath(new URL('./bin/tool.sh', import.meta.url))).toString();",
        ].join('\n'),
      },
    ]);
    expectSpecialized(await specialize(instance, { archive: archive.toString('base64'), format }));
    const answer = await callFunction(instance);
    expect({ status: answer.status, text: answer.text }).toEqual({ status: 200, text: 'the bundled tool ran\n' });
  });
});
