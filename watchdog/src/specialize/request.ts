import { isAbsolute } from 'node:path';
import { z } from 'zod';

const common = {
  entrypoint: z.string().min(1).optional(),
  function: z.string().min(1).max(200).optional(),
  // What every OS and runtime accepts as a variable: a name without `=` or NUL, a value without NUL.
  env: z
    .record(z.string(), z.string().regex(/^[^\0]*$/, 'a value must not contain NUL'))
    .superRefine((env, ctx) => {
      for (const name of Object.keys(env)) {
        if (!/^[^=\0]+$/.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'a variable name must be non-empty, without "=" or NUL' });
      }
    })
    .optional(),
};

const pathSource = z.object({
  path: z.string().refine(isAbsolute, 'must be an absolute path'),
  ...common,
}).strict();

const archiveSource = z.object({
  archive: z.string().min(1).regex(/^[A-Za-z0-9+/=\s]+$/, 'must be base64'),
  format: z.enum(['tar.gz', 'zip']),
  ...common,
}).strict();

const urlSource = z.object({
  url: z.url({ protocol: /^https?$/ }),
  sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits'),
  format: z.enum(['tar.gz', 'zip']).optional(),
  ...common,
}).strict();

/** A valid `POST /_/specialize` body: exactly one source, plus the optional fields. */
export type SpecializeRequest = z.infer<typeof pathSource> | z.infer<typeof archiveSource> | z.infer<typeof urlSource>;

const SOURCES = ['path', 'archive', 'url'] as const;

/**
 * Validates a parsed body, returning the request or the reasons it is refused (each naming the
 * field), so the 400 says exactly what to fix.
 */
export function parseSpecializeRequest(body: unknown): { ok: true; request: SpecializeRequest } | { ok: false; problems: string[] } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return { ok: false, problems: ['the body must be a JSON object'] };
  }
  const given = SOURCES.filter((key) => key in body);
  if (given.length !== 1) {
    return {
      ok: false,
      problems: [
        given.length === 0
          ? 'give exactly one source: "path", "archive" (with "format") or "url" (with "sha256")'
          : `give exactly one source, not ${given.map((g) => `"${g}"`).join(' and ')}`,
      ],
    };
  }
  const schema = given[0] === 'path' ? pathSource : given[0] === 'archive' ? archiveSource : urlSource;
  const result = schema.safeParse(body);
  if (result.success) return { ok: true, request: result.data };
  return {
    ok: false,
    problems: result.error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : 'body'}: ${issue.message}`),
  };
}
