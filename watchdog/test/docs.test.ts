import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_TABLE_END, CONFIG_TABLE_START, renderConfigTable } from '../src/config/doc.js';
import { ERRORS } from '../src/errors.js';

const docs = (name: string) => readFileSync(new URL(`../../docs/${name}`, import.meta.url), 'utf8');

describe('docs stay in step with the code', () => {
  it('docs/errors.md lists exactly the error codes of errors.ts, with their statuses', () => {
    const rows = new Map<string, string>();
    // The table of codes ends where the runtime's load-failure reasons begin.
    const table = docs('errors.md').split('## Load failure reasons')[0] as string;
    for (const match of table.matchAll(/^\| `(PILOTLIGHT_[A-Z0-9_]+)` \| ([^|]+) \|/gm)) {
      rows.set(match[1] as string, (match[2] as string).trim());
    }
    expect([...rows.keys()].sort()).toEqual(Object.keys(ERRORS).sort());
    for (const [code, { status }] of Object.entries(ERRORS)) {
      const documented = rows.get(code) as string;
      if (status === null) expect(documented.startsWith('—'), `${code} is documented as ${documented}`).toBe(true);
      else expect(documented, code).toBe(String(status));
    }
  });

  it('docs/config.md has the settings table generated from settings.ts (run `npm run docs`)', () => {
    const text = docs('config.md');
    const start = text.indexOf(CONFIG_TABLE_START);
    const end = text.indexOf(CONFIG_TABLE_END) + CONFIG_TABLE_END.length;
    expect(start).toBeGreaterThanOrEqual(0);
    expect(text.slice(start, end)).toBe(renderConfigTable());
  });
});
