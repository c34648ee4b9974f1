// Rewrites the generated settings table in docs/config.md from the settings table in the code.
import { readFileSync, writeFileSync } from 'node:fs';
import { CONFIG_TABLE_END, CONFIG_TABLE_START, renderConfigTable } from '../dist/config/doc.js';

const path = new URL('../../docs/config.md', import.meta.url);
const text = readFileSync(path, 'utf8');
const start = text.indexOf(CONFIG_TABLE_START);
const end = text.indexOf(CONFIG_TABLE_END);
if (start === -1 || end === -1) throw new Error('docs/config.md lacks the settings markers');
writeFileSync(path, text.slice(0, start) + renderConfigTable() + text.slice(end + CONFIG_TABLE_END.length));
