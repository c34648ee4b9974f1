/**
 * The fork-mode examples a user in another language would write (examples/fork-*), run through
 * the real watchdog the way their READMEs say — including a 1 GiB upload through the file-ingest
 * example with the watchdog's resident memory staying flat.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { EXAMPLES } from '../support/sdk-helpers.js';
import { killAll, type RunningWatchdog, startWatchdog } from '../support/watchdog.js';

afterEach(killAll);

const WORDCOUNT = `${EXAMPLES}fork-shell/wordcount.sh`;
const HANDLER = `${EXAMPLES}fork-python/handler.py`;
const INGEST = `${EXAMPLES}fork-ingest/ingest.py`;

function fork(mode: 'serializing' | 'streaming', process: string, env: Record<string, string> = {}): Promise<RunningWatchdog> {
  return startWatchdog({ env: { PILOTLIGHT_MODE: mode, PILOTLIGHT_PROCESS: process, ...env } });
}

describe('examples/fork-shell', () => {
  it('counts the lines, words and bytes of the body, as JSON', async () => {
    const watchdog = await fork('serializing', WORDCOUNT, { PILOTLIGHT_CONTENT_TYPE: 'application/json' });
    const res = await fetch(`${watchdog.url}/count`, { method: 'POST', body: 'hello world\nfoo\n', headers: { 'x-request-id': 'wc-1' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({ lines: 2, words: 3, bytes: 16 });
    // Its stderr became a log line of the request.
    const line = await watchdog.waitForLog((r) => r.stream === 'stderr' && r.request_id === 'wc-1');
    expect(line.msg).toBe('counting a POST body for /count');
  });

  it('upper-cases the body with ?upper=1, read from Http_Query', async () => {
    const watchdog = await fork('serializing', WORDCOUNT);
    const res = await fetch(`${watchdog.url}/?upper=1`, { method: 'POST', body: 'Shout, please.' });
    expect(await res.text()).toBe('SHOUT, PLEASE.');
  });
});

describe('examples/fork-python', () => {
  it('greets from the name header, reads method, path, query and content type from Http_*, sums the body', async () => {
    const watchdog = await fork('serializing', `python3 ${HANDLER}`, { PILOTLIGHT_CONTENT_TYPE: 'application/json' });
    const res = await fetch(`${watchdog.url}/sum?verbose=1&name=ignored`, {
      method: 'POST',
      headers: { name: 'ada', 'content-type': 'application/json' },
      body: JSON.stringify({ numbers: [1, 2, 3.5] }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      greeting: 'hello ada',
      method: 'POST',
      path: '/sum',
      query: { verbose: '1', name: 'ignored' },
      content_type: 'application/json',
      sum: 6.5,
      count: 3,
    });
    expect(body.trace).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
  });

  it('falls back to the query for the name', async () => {
    const watchdog = await fork('serializing', `python3 ${HANDLER}`);
    const res = await fetch(`${watchdog.url}/?name=grace`);
    expect(((await res.json()) as { greeting: string }).greeting).toBe('hello grace');
  });

  it('exits 1 on a body it cannot read: a 500 from the watchdog, its stderr logged with the request id', async () => {
    const watchdog = await fork('serializing', `python3 ${HANDLER}`);
    const res = await fetch(`${watchdog.url}/`, { method: 'POST', body: 'not json', headers: { 'x-request-id': 'bad-body' } });
    expect(res.status).toBe(500);
    expect(res.headers.get('x-pilotlight-error')).toBe('PILOTLIGHT_FUNCTION_FAILED');
    const line = await watchdog.waitForLog((r) => r.stream === 'stderr' && r.request_id === 'bad-body');
    expect(line).toMatchObject({ level: 'error', msg: 'the body is not a JSON object', bytes: 8 });
  });
});

/** What the ingest example streams back. */
interface Progress {
  progress?: { bytes: number; lines: number };
  summary?: { bytes: number; lines: number; blank_lines: number; longest_line: number; sha256: string };
}

function ingestLines(text: string): Progress[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Progress);
}

describe('examples/fork-ingest', () => {
  it('processes an upload line by line and streams progress, then a summary', async () => {
    const watchdog = await fork('streaming', `python3 ${INGEST}`, { PILOTLIGHT_CONTENT_TYPE: 'application/x-ndjson' });
    const body = 'id,name\n1,ada\n\n2,grace\r\n3,barbara';
    const res = await fetch(`${watchdog.url}/`, { method: 'POST', body, headers: { 'x-progress-every': '10' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson');
    const records = ingestLines(await res.text());
    expect(records.filter((r) => r.progress).length).toBeGreaterThanOrEqual(2);
    expect(records.at(-1)?.summary).toEqual({
      bytes: body.length,
      lines: 5,
      blank_lines: 1,
      longest_line: 9,
      sha256: createHash('sha256').update(body).digest('hex'),
    });
  });

  it(
    'takes a 1 GiB upload as a stream with the watchdog\'s resident memory growing by less than 50 MB',
    async () => {
      const watchdog = await fork('streaming', `python3 ${INGEST}`, {
        PILOTLIGHT_CONTENT_TYPE: 'application/x-ndjson',
        PILOTLIGHT_MAX_BODY_SIZE: '2GiB',
        PILOTLIGHT_READ_TIMEOUT: '10m',
        PILOTLIGHT_EXEC_TIMEOUT: '10m',
        PILOTLIGHT_WRITE_TIMEOUT: '10m',
      });
      const pid = watchdog.process.pid as number;
      const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;

      // A request first, so what the watchdog allocates once (its first fork, the body path) is
      // in the baseline.
      const warm = await fetch(`${watchdog.url}/`, { method: 'POST', body: 'warm\n' });
      expect(ingestLines(await warm.text()).at(-1)?.summary?.lines).toBe(1);
      const baseline = rss();

      // 1 GiB of CSV-like text made from one 1 MiB block written again and again, never held whole.
      const MiB = 1024 * 1024;
      const rows: string[] = [];
      let size = 0;
      for (let i = 0; size < MiB; i += 1) {
        const row = `${i},sensor-${i % 97},${(i * 7919) % 100000},${'x'.repeat(180 + (i % 50))}\n`;
        rows.push(row);
        size += row.length;
      }
      const block = Buffer.from(rows.join('')).subarray(0, MiB);
      const blocks = 1024;
      const expectedLines = block.toString('latin1').split('\n').length - 1;
      expect(block.at(-1)).not.toBe(0x0a);
      const expected = createHash('sha256');
      for (let i = 0; i < blocks; i += 1) expected.update(block);
      const expectedSha = expected.digest('hex');

      let peak = baseline;
      const sampler = setInterval(() => {
        peak = Math.max(peak, rss());
      }, 25);
      const { hostname, port } = new URL(watchdog.url);
      const answer = await new Promise<{ status: number; text: string; progressBeforeEnd: number }>((resolve, reject) => {
        let uploaded = false;
        let progressBeforeEnd = 0;
        const req = httpRequest({ hostname, port, method: 'POST', path: '/', headers: { 'x-progress-every': String(128 * MiB) } }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk: string) => {
            text += chunk;
            // Progress arrives while the upload is still going: the body was never buffered whole.
            if (!uploaded) progressBeforeEnd = text.split('\n').filter((l) => l.startsWith('{"progress"')).length;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text, progressBeforeEnd }));
          res.on('error', reject);
        });
        req.on('error', reject);
        let written = 0;
        const write = () => {
          while (written < blocks) {
            written += 1;
            if (!req.write(block)) return void req.once('drain', write);
          }
          uploaded = true;
          req.end();
        };
        write();
      });
      peak = Math.max(peak, rss());
      clearInterval(sampler);

      expect(answer.status).toBe(200);
      const records = ingestLines(answer.text);
      expect(records.at(-1)?.summary).toMatchObject({ bytes: blocks * MiB, sha256: expectedSha });
      // Each block ends mid-row; the row goes on in the next block, so rows join across blocks.
      expect(records.at(-1)?.summary?.lines).toBe(expectedLines * blocks + 1);
      expect(records.filter((r) => r.progress).length).toBeGreaterThanOrEqual(7);
      expect(answer.progressBeforeEnd).toBeGreaterThan(0);

      const growth = peak - baseline;
      console.log(
        `fork-ingest 1 GiB: watchdog VmRSS ${(baseline / MiB).toFixed(1)} MiB before, ${(peak / MiB).toFixed(1)} MiB at peak, growth ${(growth / MiB).toFixed(1)} MiB`,
      );
      expect(growth).toBeLessThan(50 * 1000 * 1000);
    },
    240_000,
  );
});
