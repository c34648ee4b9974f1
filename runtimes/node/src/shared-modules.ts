import Module, { createRequire, register } from 'node:module';

/**
 * Packages user code must share with the runtime rather than bring its own copy of: two copies of
 * routing-controllers would mean two metadata stores and HTTP error classes that fail
 * `instanceof` in the other copy's error handler.
 */
export const SHARED_PACKAGES = [
  '@pilotlight/sdk',
  '@pilotlight/logger',
  'routing-controllers',
  'reflect-metadata',
  'class-transformer',
  'class-validator',
  'koa',
  '@koa/router',
] as const;

const requireHere = createRequire(import.meta.url);

/**
 * Makes every `import` and `require` of a shared package, from anywhere, resolve to the runtime's
 * own copy: an ESM resolve hook for imports and a `_resolveFilename` wrapper for CommonJS.
 */
export function shareRuntimePackages(): void {
  const paths: Record<string, string> = {};
  for (const name of SHARED_PACKAGES) paths[name] = requireHere.resolve(name);
  register(new URL('./resolve-hook.js', import.meta.url), { data: { paths } });
  const internal = Module as unknown as {
    _resolveFilename(request: string, parent: unknown, isMain: boolean, options: unknown): string;
  };
  const original = internal._resolveFilename;
  internal._resolveFilename = function resolveShared(request, parent, isMain, options) {
    return paths[request] ?? original.call(this, request, parent, isMain, options);
  };
}
