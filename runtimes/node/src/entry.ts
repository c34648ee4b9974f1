import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';

/** The file to import, optionally the export to use, and the package's version if it has one. */
export interface Entry {
  readonly file: string;
  readonly exportName: string | undefined;
  readonly version: string | undefined;
}

/** A load that cannot succeed for a reason the function's author can fix. */
export class LoadError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'LoadError';
  }
}

const MODULE_FILE = /\.(?:m|c)?js$/;
const CANDIDATES = ['', '.js', '.mjs', '.cjs', '/index.js', '/index.mjs', '/index.cjs'];

function findFile(root: string, base: string): string | undefined {
  for (const suffix of CANDIDATES) {
    const path = join(root, base + suffix);
    if (statSync(path, { throwIfNoEntry: false })?.isFile()) return path;
  }
  return undefined;
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/** The fields of the function's package.json the runtime uses; empty without one. */
function readPackage(root: string): { main?: unknown; version?: unknown } {
  const path = join(root, 'package.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw error;
  }
  try {
    return JSON.parse(text) as { main?: unknown; version?: unknown };
  } catch (error) {
    throw new LoadError('PILOTLIGHT_LOAD_FAILED', `${path} is not valid JSON (${(error as Error).message}): fix it or remove it`);
  }
}

/**
 * Finds the module to load in `root`. `entrypoint` is a module path (`dist/index.js`, `handler`)
 * or `file.export` (`handler.main`); without one, package.json's `main`, then `index.{js,mjs,cjs}`.
 */
export function resolveEntry(rootDir: string, entrypoint: string | undefined): Entry {
  const root = resolve(rootDir);
  // One system call per check: this runs on the load a request waits for.
  if (!statSync(root, { throwIfNoEntry: false })?.isDirectory()) {
    throw new LoadError('PILOTLIGHT_CODE_MISSING', `the function's directory ${root} does not exist`);
  }
  const pkg = readPackage(root);
  let base: string | undefined;
  let exportName: string | undefined;
  if (entrypoint !== undefined) {
    base = entrypoint;
    const dot = entrypoint.lastIndexOf('.');
    // A file by that very name (`index.ts`) is that file, not `index` with the export `ts`: its
    // import then says what is wrong with it.
    const isFile = () => statSync(join(root, entrypoint), { throwIfNoEntry: false })?.isFile();
    if (!MODULE_FILE.test(entrypoint) && dot > entrypoint.lastIndexOf('/') && dot > 0 && !isFile()) {
      base = entrypoint.slice(0, dot);
      exportName = entrypoint.slice(dot + 1);
    }
  } else {
    base = typeof pkg.main === 'string' ? pkg.main : 'index';
  }
  const file = findFile(root, base.replace(/^\.\//, ''));
  if (!file) {
    throw new LoadError(
      'PILOTLIGHT_NO_ENTRYPOINT',
      `no module "${base}" in ${root}: give "entrypoint" (a file such as dist/index.js, or file.export) or add index.js`,
    );
  }
  if (!inside(root, file)) throw new LoadError('PILOTLIGHT_NO_ENTRYPOINT', `entrypoint ${entrypoint} is outside ${root}`);
  return { file, exportName, version: typeof pkg.version === 'string' ? pkg.version : undefined };
}
