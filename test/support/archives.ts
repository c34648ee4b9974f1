import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join, relative, sep } from 'node:path';
import { type RunningWatchdog, startWatchdog } from './watchdog.js';

/** One entry of a crafted archive, written exactly as given (no name clean-up). */
export type ArchiveEntry =
  | { readonly name: string; readonly type?: 'file'; readonly data: string | Buffer; readonly mode?: number }
  | { readonly name: string; readonly type: 'dir' }
  | { readonly name: string; readonly type: 'symlink'; readonly target: string };

/** The archive formats `/_/specialize` takes. */
export type ArchiveFormat = 'tar.gz' | 'zip';

// Python's tarfile and zipfile write any entry name given to TarInfo/ZipInfo as is, which normal
// tools refuse to do: that is how the unsafe archives (`..`, absolute paths, links) are made.
const WRITER = String.raw`
import io, json, sys, tarfile, zipfile, base64
spec = json.load(sys.stdin)
out = io.BytesIO()
if spec['format'] == 'tar.gz':
    with tarfile.open(fileobj=out, mode='w:gz', format=tarfile.GNU_FORMAT) as tar:
        for e in spec['entries']:
            info = tarfile.TarInfo(e['name'])
            info.mtime = 1700000000
            if e['type'] == 'dir':
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            elif e['type'] == 'symlink':
                info.type = tarfile.SYMTYPE
                info.linkname = e['target']
                info.mode = 0o777
                tar.addfile(info)
            else:
                data = base64.b64decode(e['data'])
                info.size = len(data)
                info.mode = e['mode']
                tar.addfile(info, io.BytesIO(data))
else:
    with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as z:
        for e in spec['entries']:
            info = zipfile.ZipInfo(e['name'], date_time=(2024, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.compress_type = zipfile.ZIP_DEFLATED
            if e['type'] == 'dir':
                info.external_attr = (0o040755 << 16) | 0x10
                z.writestr(info, b'')
            elif e['type'] == 'symlink':
                info.external_attr = 0o120777 << 16
                z.writestr(info, e['target'].encode())
            else:
                info.external_attr = (0o100000 | e['mode']) << 16
                z.writestr(info, base64.b64decode(e['data']))
sys.stdout.buffer.write(out.getvalue())
`;

/** Builds a tar.gz or zip holding exactly `entries` (with python3, so any name can be written). */
export function makeArchive(format: ArchiveFormat, entries: readonly ArchiveEntry[]): Buffer {
  const spec = {
    format,
    entries: entries.map((entry) =>
      entry.type === 'dir' || entry.type === 'symlink'
        ? entry
        : { name: entry.name, type: 'file', data: Buffer.from(entry.data).toString('base64'), mode: entry.mode ?? 0o644 },
    ),
  };
  return execFileSync('python3', ['-c', WRITER], { input: JSON.stringify(spec), maxBuffer: 64 * 1024 * 1024 });
}

/** The files under `dir` as archive entries named relative to it, optionally only those `keep` accepts. */
export function entriesOf(dir: string, keep: (relativePath: string) => boolean = () => true): ArchiveEntry[] {
  const entries: ArchiveEntry[] = [];
  const walk = (current: string) => {
    for (const dirent of readdirSync(current, { withFileTypes: true })) {
      const path = join(current, dirent.name);
      const name = relative(dir, path).split(sep).join('/');
      if (dirent.isDirectory()) walk(path);
      else if (dirent.isFile() && keep(name)) entries.push({ name, data: readFileSync(path) });
    }
  };
  walk(dir);
  return entries;
}

/** Hex sha256 of `data`, as `/_/specialize` expects it for a `url`. */
export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A small HTTP server on loopback that serves fixed bodies by path and 404s anything else. */
export interface CodeServer {
  readonly url: string;
  /** Paths requested so far, in order. */
  readonly requests: string[];
  serve(path: string, body: Buffer): void;
  close(): Promise<void>;
}

/** Starts a {@link CodeServer}: what a platform's artifact store looks like to the watchdog. */
export async function startCodeServer(): Promise<CodeServer> {
  const bodies = new Map<string, Buffer>();
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const body = bodies.get(req.url ?? '');
    if (!body) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    serve: (path, body) => void bodies.set(path, body),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A generic Node runtime instance extracting into its own `tmpdir` (so what an archive leaves
 * behind can be seen there), beside a code server for `url` sources.
 */
export async function startArchiveSetup(tmpdir: string, env: Record<string, string>): Promise<{ watchdog: RunningWatchdog; codeServer: CodeServer }> {
  const [watchdog, codeServer] = await Promise.all([
    startWatchdog({ env: { PILOTLIGHT_RUNTIME: 'node', TMPDIR: tmpdir, ...env }, waitFor: 'listening' }),
    startCodeServer(),
  ]);
  await watchdog.waitForState('generic');
  return { watchdog, codeServer };
}
