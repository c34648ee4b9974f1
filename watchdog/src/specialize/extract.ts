import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Parser, type ReadEntry } from 'tar';
import yauzl from 'yauzl';
import { WatchdogError } from '../errors.js';

/** The archive formats specialization accepts. */
export type ArchiveFormat = 'tar.gz' | 'zip';

/** Bounds on what an archive may unpack to. */
export interface ArchiveLimits {
  readonly maxBytes: number;
  readonly maxEntries: number;
}

interface Listed {
  readonly path: string;
  readonly directory: boolean;
  readonly size: number;
}

/** Permission bits an extracted file keeps (then masked by the umask): an executable stays one. */
const PERMISSIONS = 0o777;
const DEFAULT_MODE = 0o644;

function unsafe(path: string, why: string): WatchdogError {
  return new WatchdogError('PILOTLIGHT_ARCHIVE_UNSAFE', `archive entry ${JSON.stringify(path)} ${why}; nothing was extracted`);
}

/** Refuses any entry name that could land outside the target directory. */
function checkPath(path: string): void {
  if (path.includes('\0')) throw unsafe(path, 'has a NUL byte');
  if (isAbsolute(path) || /^[a-zA-Z]:/.test(path) || path.startsWith('\\')) throw unsafe(path, 'is an absolute path');
  if (path.split(/[\\/]/).includes('..')) throw unsafe(path, 'climbs out with ..');
}

function checkBounds(entries: readonly Listed[], limits: ArchiveLimits): void {
  if (entries.length > limits.maxEntries) {
    throw new WatchdogError('PILOTLIGHT_CODE_TOO_LARGE', `the archive has ${entries.length} entries, more than max_code_entries (${limits.maxEntries})`);
  }
  const total = entries.reduce((sum, entry) => sum + entry.size, 0);
  if (total > limits.maxBytes) {
    throw new WatchdogError('PILOTLIGHT_CODE_TOO_LARGE', `the archive unpacks to ${total} bytes, more than max_code_size (${limits.maxBytes})`);
  }
}

/**
 * Refuses entries that need one path to be both a file and a folder (`a`, then `a/b`): no order of
 * writing could extract them. The same file twice is not refused: the later one wins, as with
 * `tar -x` and `unzip -o`.
 */
function checkLayout(entries: readonly Listed[]): void {
  const files = new Set<string>();
  const folders = new Set<string>();
  for (const entry of entries) {
    const parts = normalize(entry.path).split(/[\\/]/).filter((part) => part !== '' && part !== '.');
    for (let depth = 1; depth < parts.length; depth += 1) folders.add(parts.slice(0, depth).join('/'));
    (entry.directory ? folders : files).add(parts.join('/'));
  }
  for (const file of files) {
    if (folders.has(file)) {
      throw new WatchdogError('PILOTLIGHT_ARCHIVE_INVALID', `archive entry ${JSON.stringify(file)} is both a file and a folder; nothing was extracted`);
    }
  }
}

const TAR_FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);
const TAR_META_TYPES = new Set(['ExtendedHeader', 'GlobalExtendedHeader', 'NextFileHasLongPath', 'NextFileHasLongLinkpath', 'OldExtendedHeader']);

/** Lists a tar.gz without writing anything, refusing links, devices and escaping paths. */
function listTar(archive: Buffer): Promise<Listed[]> {
  return new Promise((resolve, reject) => {
    const entries: Listed[] = [];
    let failure: Error | undefined;
    const parser = new Parser({
      strict: true,
      onReadEntry: (entry) => {
        entry.resume();
        if (failure || TAR_META_TYPES.has(entry.type)) return;
        try {
          checkPath(entry.path);
          if (entry.type === 'Directory') entries.push({ path: entry.path, directory: true, size: 0 });
          else if (TAR_FILE_TYPES.has(entry.type)) entries.push({ path: entry.path, directory: false, size: entry.size ?? 0 });
          else throw unsafe(entry.path, `is a ${entry.type}, and only files and folders are extracted`);
        } catch (error) {
          failure = error as Error;
        }
      },
    });
    parser.on('error', (error: Error) => {
      failure ??= new WatchdogError('PILOTLIGHT_ARCHIVE_INVALID', `not a readable tar.gz: ${error.message}`);
    });
    // A broken gzip stream (a truncated archive) aborts the parser: 'error' follows, 'end' never does.
    parser.on('abort', (error: Error) => {
      failure ??= new WatchdogError('PILOTLIGHT_ARCHIVE_INVALID', `not a readable tar.gz: ${error.message}`);
      reject(failure);
    });
    parser.on('end', () => (failure ? reject(failure) : resolve(entries)));
    parser.end(archive);
  });
}

/**
 * Creates folders under an extraction target, each once: creating a file costs a few system
 * calls, and a `mkdir` per file on top of them was a third of a zip's extraction time.
 */
function folderMaker(): (path: string) => Promise<void> {
  const made = new Set<string>();
  return async (path) => {
    if (made.has(path)) return;
    await mkdir(path, { recursive: true });
    made.add(path);
  };
}

/** How much of a compressed archive the writing pass inflates at a time. */
const SLICE = 64 * 1024;

function* slices(archive: Buffer): Generator<Buffer> {
  for (let at = 0; at < archive.length; at += SLICE) yield archive.subarray(at, at + SLICE);
}

/**
 * Writes a tar.gz that {@link listTar} has checked, one file at a time: each entry's content is
 * read only once the file before it is written, so the parser waits, the archive is inflated a
 * slice at a time, and after `signal` aborts nothing more is written and nothing is left writing.
 * tar's own `Unpack` writes every file at once and cannot be stopped.
 */
async function writeTar(archive: Buffer, target: string, signal: AbortSignal): Promise<void> {
  const folder = folderMaker();
  let written = Promise.resolve();
  let failure: unknown;
  const writeEntry = async (entry: ReadEntry) => {
    const path = join(target, normalize(entry.path));
    if (entry.type === 'Directory') {
      entry.resume();
      await folder(path);
    } else if (TAR_FILE_TYPES.has(entry.type)) {
      await folder(dirname(path));
      // A later entry of the same name replaces an earlier one, as tar itself does. The target
      // is fresh and holds no links, so `w` cannot write anywhere else.
      await writeFile(path, entry, { mode: (entry.mode ?? 0) & PERMISSIONS || DEFAULT_MODE, signal });
    } else {
      entry.resume();
    }
  };
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry) => {
      written = written.then(async () => {
        if (failure === undefined) {
          try {
            signal.throwIfAborted();
            await writeEntry(entry);
            return;
          } catch (error) {
            failure = error;
            parser.abort(error as Error);
          }
        }
        entry.resume();
      });
    },
  });
  try {
    await pipeline(Readable.from(slices(archive)), parser);
  } catch (error) {
    failure ??= error;
  }
  await written;
  if (failure !== undefined) throw failure;
}

function openZip(archive: Buffer): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(archive, { lazyEntries: true, validateEntrySizes: true, strictFileNames: true, decodeStrings: true }, (error, zip) => {
      if (error) reject(new WatchdogError('PILOTLIGHT_ARCHIVE_INVALID', `not a readable zip: ${error.message}`));
      else resolve(zip);
    });
  });
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

/** Walks a zip's central directory, calling `visit` per entry, refusing links and escaping paths. */
async function walkZip(archive: Buffer, visit: (zip: yauzl.ZipFile, entry: yauzl.Entry) => Promise<void>): Promise<void> {
  const zip = await openZip(archive);
  await new Promise<void>((resolve, reject) => {
    zip.on('error', (error: Error) => {
      reject(
        /absolute path|invalid relative path/.test(error.message)
          ? unsafe(error.message.replace(/^[^:]*: /, ''), 'escapes the target')
          : new WatchdogError('PILOTLIGHT_ARCHIVE_INVALID', `not a readable zip: ${error.message}`),
      );
    });
    zip.on('entry', (entry: yauzl.Entry) => {
      try {
        checkPath(entry.fileName);
        const type = (entry.externalFileAttributes >>> 16) & S_IFMT;
        if (type !== 0 && type !== S_IFREG && type !== S_IFDIR) throw unsafe(entry.fileName, 'is a link or device');
      } catch (error) {
        zip.close();
        reject(error);
        return;
      }
      visit(zip, entry).then(() => zip.readEntry(), (error: unknown) => {
        zip.close();
        reject(error);
      });
    });
    zip.on('end', () => resolve());
    zip.readEntry();
  });
}

async function extractZip(archive: Buffer, target: string, signal: AbortSignal): Promise<void> {
  const folder = folderMaker();
  await walkZip(archive, async (zip, entry) => {
    signal.throwIfAborted();
    const path = join(target, normalize(entry.fileName));
    if (entry.fileName.endsWith('/')) {
      await folder(path);
      return;
    }
    await folder(dirname(path));
    const mode = (entry.externalFileAttributes >>> 16) & PERMISSIONS || DEFAULT_MODE;
    try {
      const stream = await new Promise<Readable>((resolve, reject) => {
        zip.openReadStream(entry, (error, readable) => (error ? reject(error) : resolve(readable)));
      });
      // As in a tar, a later entry of the same name replaces an earlier one. `pipeline`, not
      // `writeFile(path, stream)`: a broken entry makes yauzl's inflate stream emit a second
      // error after the first, and only `pipeline` keeps listening (without it, the watchdog
      // crashed on it).
      await pipeline(stream, createWriteStream(path, { mode }), { signal });
    } catch (error) {
      // The central directory, all the checking pass reads, can be sound while an entry's data
      // is not: that is found only now, inflating it.
      if (signal.aborted || typeof (error as NodeJS.ErrnoException).syscall === 'string') throw error;
      throw new WatchdogError('PILOTLIGHT_ARCHIVE_INVALID', `not a readable zip: entry ${JSON.stringify(entry.fileName)}: ${(error as Error).message}`);
    }
  });
}

/**
 * Extracts `archive` into the empty directory `target`, only after a first pass has checked every
 * entry: any `..`, absolute path, link or device rejects the whole archive with nothing written,
 * and so do more entries or bytes than `limits` allow (sizes are checked again while inflating)
 * and a path that would have to be both a file and a folder.
 * Files are written one at a time, so `signal` (a specialization past its deadline) stops the
 * extraction at the next file, with nothing still writing; what was written is the caller's to
 * delete.
 */
export async function extractArchive(archive: Buffer, format: ArchiveFormat, target: string, limits: ArchiveLimits, signal: AbortSignal): Promise<void> {
  if (format === 'tar.gz') {
    const entries = await listTar(archive);
    checkBounds(entries, limits);
    checkLayout(entries);
    await writeTar(archive, target, signal);
    return;
  }
  const entries: Listed[] = [];
  await walkZip(archive, async (_zip, entry) => {
    entries.push({ path: entry.fileName, directory: entry.fileName.endsWith('/'), size: entry.uncompressedSize });
  });
  checkBounds(entries, limits);
  checkLayout(entries);
  await extractZip(archive, target, signal);
}
