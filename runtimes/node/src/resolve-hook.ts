import { pathToFileURL } from 'node:url';

/** Module customization hook (runs on Node's loader thread): see shared-modules.ts. */
let urls: Record<string, string> = {};

/** Receives the runtime's resolved paths of the shared packages. */
export function initialize(data: { paths: Record<string, string> }): void {
  urls = Object.fromEntries(Object.entries(data.paths).map(([name, path]) => [name, pathToFileURL(path).href]));
}

type Next = (specifier: string, context: unknown) => unknown;

/** Resolves a shared package to the runtime's copy; everything else as usual. */
export function resolve(specifier: string, context: unknown, next: Next): unknown {
  const url = urls[specifier];
  return url ? { url, shortCircuit: true } : next(specifier, context);
}
