import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';

/** The file to import and, optionally, the export to use. */
export interface Entry {
  readonly file: string;
  readonly exportName: string | undefined;
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
    if (existsSync(path) && statSync(path).isFile()) return path;
  }
  return undefined;
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

/**
 * Finds the module to load in `root`. `entrypoint` is a module path (`dist/index.js`, `handler`)
 * or `file.export` (`handler.main`); without one, package.json's `main`, then `index.{js,mjs,cjs}`.
 */
export function resolveEntry(rootDir: string, entrypoint: string | undefined): Entry {
  const root = resolve(rootDir);
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new LoadError('PILOTLIGHT_CODE_MISSING', `the function's directory ${root} does not exist`);
  }
  let base: string | undefined;
  let exportName: string | undefined;
  if (entrypoint !== undefined) {
    base = entrypoint;
    const dot = entrypoint.lastIndexOf('.');
    if (!MODULE_FILE.test(entrypoint) && dot > entrypoint.lastIndexOf('/') && dot > 0) {
      base = entrypoint.slice(0, dot);
      exportName = entrypoint.slice(dot + 1);
    }
  } else {
    const pkgPath = join(root, 'package.json');
    if (existsSync(pkgPath)) {
      const main = (JSON.parse(readFileSync(pkgPath, 'utf8')) as { main?: unknown }).main;
      if (typeof main === 'string') base = main;
    }
    base ??= 'index';
  }
  const file = findFile(root, base.replace(/^\.\//, ''));
  if (!file) {
    throw new LoadError(
      'PILOTLIGHT_NO_ENTRYPOINT',
      `no module "${base}" in ${root}: give "entrypoint" (a file such as dist/index.js, or file.export) or add index.js`,
    );
  }
  if (!inside(root, file)) throw new LoadError('PILOTLIGHT_NO_ENTRYPOINT', `entrypoint ${entrypoint} is outside ${root}`);
  return { file, exportName };
}
