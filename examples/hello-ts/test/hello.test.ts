import { invoke } from '@pilotlight/sdk/testing';
import { describe, expect, it } from 'vitest';
import { HelloWorldFunction } from '../dist/index.js';

describe('HelloWorldFunction', () => {
  it('greets by the name header', async () => {
    const res = await invoke(HelloWorldFunction, { method: 'POST', headers: { name: 'world' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('hello world');
  });

  it('answers GET with 405: only POST is routed', async () => {
    const res = await invoke(HelloWorldFunction, { method: 'GET' });
    expect(res.status).toBe(405);
  });
});
