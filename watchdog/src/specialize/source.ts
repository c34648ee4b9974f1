import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, type Dispatcher, interceptors, request } from 'undici';
import { WatchdogError } from '../errors.js';
import { type ArchiveFormat, type ArchiveLimits, extractArchive } from './extract.js';
import type { SpecializeRequest } from './request.js';

function tooLarge(what: string, limit: number): WatchdogError {
  return new WatchdogError('PILOTLIGHT_CODE_TOO_LARGE', `${what} is larger than max_code_size (${limit} bytes)`);
}

function formatOf(url: string, given: ArchiveFormat | undefined): ArchiveFormat {
  if (given) return given;
  const path = new URL(url).pathname;
  if (path.endsWith('.zip')) return 'zip';
  if (path.endsWith('.tar.gz') || path.endsWith('.tgz')) return 'tar.gz';
  throw new WatchdogError('PILOTLIGHT_BAD_SPECIALIZE', `cannot tell the archive format of ${url}: add "format": "tar.gz" or "zip"`);
}

/**
 * Downloads `url` with undici, bounded in size, and checks its sha256 before anything uses it. The
 * agent is this download's alone and is closed after it: a generic instance downloads once, and
 * kept-alive sockets to an artifact store would outlive the need by the agent's idle timeout.
 */
async function download(url: string, sha256: string, limit: number, signal: AbortSignal): Promise<Buffer> {
  const agent = new Agent();
  try {
    return await fetchVerified(url, sha256, limit, signal, agent.compose(interceptors.redirect({ maxRedirections: 5 })));
  } finally {
    await agent.destroy();
  }
}

async function fetchVerified(url: string, sha256: string, limit: number, signal: AbortSignal, dispatcher: Dispatcher): Promise<Buffer> {
  let response: Awaited<ReturnType<typeof request>>;
  try {
    response = await request(url, { signal, dispatcher });
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    throw new WatchdogError('PILOTLIGHT_FETCH_FAILED', `could not fetch ${url}: ${(error as { code?: string }).code ?? (error as Error).message}`);
  }
  if (response.statusCode < 200 || response.statusCode > 299) {
    await response.body.dump();
    throw new WatchdogError('PILOTLIGHT_FETCH_FAILED', `GET ${url} answered ${response.statusCode}, not 2xx`);
  }
  const declared = Number(response.headers['content-length'] ?? 0);
  if (limit > 0 && declared > limit) {
    await response.body.dump();
    throw tooLarge(`the code at ${url}`, limit);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  const hash = createHash('sha256');
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (limit > 0 && size > limit) {
      response.body.destroy();
      throw tooLarge(`the code at ${url}`, limit);
    }
    hash.update(chunk);
    chunks.push(chunk);
  }
  const actual = hash.digest('hex');
  if (actual !== sha256.toLowerCase()) {
    throw new WatchdogError('PILOTLIGHT_CHECKSUM_MISMATCH', `the code at ${url} has sha256 ${actual}, not ${sha256.toLowerCase()}; it was not used`);
  }
  return Buffer.concat(chunks);
}

/**
 * A file system error from putting code on disk, as the watchdog's error. A name this file system
 * cannot hold is the archive's fault; anything else (no space, a read-only or foreign tmpdir) is
 * the instance's, and neither is a bug in the watchdog.
 */
function writeError(error: unknown, dir: string): unknown {
  const failure = error as NodeJS.ErrnoException;
  if (error instanceof WatchdogError || typeof failure?.code !== 'string' || typeof failure.syscall !== 'string') return error;
  if (failure.code === 'ENAMETOOLONG' || failure.code === 'EILSEQ') {
    return new WatchdogError('PILOTLIGHT_ARCHIVE_INVALID', `an archive entry has a name this file system cannot hold (${failure.message}); nothing was kept`);
  }
  return new WatchdogError(
    'PILOTLIGHT_CODE_UNWRITABLE',
    `the code could not be written under ${dir} (${failure.message}): give the instance a writable TMPDIR with room for max_code_size`,
  );
}

async function unpack(archive: Buffer, format: ArchiveFormat, limits: ArchiveLimits, signal: AbortSignal): Promise<string> {
  const dir = tmpdir();
  let target: string;
  try {
    target = await mkdtemp(join(dir, 'pilotlight-code-'));
  } catch (error) {
    throw writeError(error, dir);
  }
  try {
    await extractArchive(archive, format, target, limits, signal);
  } catch (error) {
    // A refused or abandoned archive leaves nothing behind, not even the directory it was checked for.
    await rm(target, { recursive: true, force: true });
    throw writeError(error, dir);
  }
  return target;
}

/** A source the watchdog must put on disk itself: everything but a `path`. */
export type CodeSource = Exclude<SpecializeRequest, { path: string }>;

/**
 * Puts the requested code on disk and returns its new directory: an `archive` decoded and
 * extracted, a `url` downloaded, verified and extracted. Once `signal` aborts, it stops at the
 * next step and deletes what it wrote.
 */
export async function materialize(request: CodeSource, limits: ArchiveLimits, signal: AbortSignal): Promise<string> {
  if ('archive' in request) {
    // base64 is 4 characters per 3 bytes; refuse before decoding anything too large.
    if (limits.maxBytes > 0 && (request.archive.length * 3) / 4 > limits.maxBytes + 3) throw tooLarge('the archive', limits.maxBytes);
    return unpack(Buffer.from(request.archive, 'base64'), request.format, limits, signal);
  }
  const archive = await download(request.url, request.sha256, limits.maxBytes, signal);
  return unpack(archive, formatOf(request.url, request.format), limits, signal);
}
