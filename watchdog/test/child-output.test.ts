import { PassThrough } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { forwardChildOutput } from '../src/log/child-output.js';

function capture(options: { maxLine?: number; wrap?: boolean } = {}) {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const sink = new PassThrough();
  sink.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  const logger = pino({ base: { function: 'f' }, formatters: { level: (label) => ({ level: label }) } }, sink);
  const source = new PassThrough();
  forwardChildOutput(source, {
    logger,
    stream: 'stdout',
    maxLine: options.maxLine ?? 1_000,
    wrap: options.wrap ?? true,
    writeRaw: (text) => raw.push(text),
  });
  const end = () => new Promise<void>((resolve) => source.end(() => setImmediate(resolve)));
  return { lines, raw, source, end };
}

describe('forwardChildOutput', () => {
  it('wraps plain lines, across chunk boundaries and CRLF', async () => {
    const { lines, source, end } = capture();
    source.write('first li');
    source.write('ne\r\nsecond\nthird');
    await end();
    expect(lines.map((l) => l.msg)).toEqual(['first line', 'second', 'third']);
    expect(lines[0]).toMatchObject({ level: 'info', stream: 'stdout', function: 'f' });
  });

  it('merges a JSON line instead of encoding it twice, keeping its level and message', async () => {
    const { lines, source, end } = capture();
    source.write('{"level":50,"msg":"db down","user":"u1","time":123}\n{"level":"warn","n":2}\n[1,2]\n');
    await end();
    expect(lines[0]).toMatchObject({ level: 'error', msg: 'db down', user: 'u1', child_time: 123, stream: 'stdout' });
    expect(lines[1]).toMatchObject({ level: 'warn', n: 2 });
    expect(lines[2]).toMatchObject({ level: 'info', msg: '[1,2]' });
  });

  it('logs a line longer than the buffer in numbered parts without holding it', async () => {
    const { lines, source, end } = capture({ maxLine: 10 });
    source.write('a'.repeat(25));
    expect(lines.map((l) => l.part)).toEqual([1, 2]);
    source.write('b\nshort\n');
    await end();
    expect(lines.map((l) => [l.msg, l.part, l.partial])).toEqual([
      ['a'.repeat(10), 1, true],
      ['a'.repeat(10), 2, true],
      ['aaaaab', 3, false],
      ['short', undefined, undefined],
    ]);
  });

  it('logs a child line over the limit in parts the same whether it arrived whole or in pieces, cutting between characters', async () => {
    const line = `${'é'.repeat(7)}z`; // 15 bytes in UTF-8
    const whole = capture({ maxLine: 5 });
    whole.source.write(`${line}\n`);
    await whole.end();
    const pieces = capture({ maxLine: 5 });
    for (const byte of Buffer.from(`${line}\n`)) pieces.source.write(Buffer.of(byte));
    await pieces.end();
    const expected = [
      ['éé', 1, true],
      ['éé', 2, true],
      ['éé', 3, true],
      ['éz', 4, false],
    ];
    expect(whole.lines.map((l) => [l.msg, l.part, l.partial])).toEqual(expected);
    expect(pieces.lines.map((l) => [l.msg, l.part, l.partial])).toEqual(expected);
  });

  it('logs a child line at level fatal as fatal, without the synchronous flush that reorders the log', async () => {
    const lines: Record<string, unknown>[] = [];
    let flushes = 0;
    const sink = Object.assign(new PassThrough(), { flushSync: () => void (flushes += 1) });
    sink.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
    });
    const logger = pino({ formatters: { level: (label) => ({ level: label }) } }, sink);
    const source = new PassThrough();
    forwardChildOutput(source, { logger, stream: 'stderr', maxLine: 1_000, wrap: true, writeRaw: () => {} });
    source.end('{"level":"fatal","msg":"giving up","n":1}\n{"level":60,"msg":"again"}\n');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toMatchObject([
      { level: 'fatal', msg: 'giving up', n: 1, stream: 'stderr' },
      { level: 'fatal', msg: 'again', stream: 'stderr' },
    ]);
    expect(flushes).toBe(0);
  });

  it('passes lines through untouched when wrapping is off', async () => {
    const { raw, lines, source, end } = capture({ wrap: false });
    source.write('plain\n{"a":1}\n');
    await end();
    expect(raw).toEqual(['plain\n', '{"a":1}\n']);
    expect(lines).toEqual([]);
  });
});
