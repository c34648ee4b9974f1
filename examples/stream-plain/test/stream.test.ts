import { invoke } from '@pilotlight/sdk/testing';
import { describe, expect, it } from 'vitest';
import countdown from '../dist/index.js';

describe('countdown', () => {
  it('streams one line per number down to zero', async () => {
    const res = await invoke(countdown, { path: '/?from=3' });
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await res.text()).toBe('3\n2\n1\n0\n');
  });
});
