import { invoke } from '@pilotlight/sdk/testing';
import { describe, expect, it } from 'vitest';
import { BatchFunction } from '../dist/index.js';

describe('BatchFunction', () => {
  it('finishes every step with time to spare, echoing the request and trace ids', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await invoke(BatchFunction, {
      method: 'POST',
      path: '/?steps=3',
      headers: { 'x-request-id': 'req-1', traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    });
    expect(await res.json()).toEqual({ done: 3, traceId, requestId: 'req-1', stoppedEarly: false });
  });

  it('stops early when the deadline is near', async () => {
    const res = await invoke(BatchFunction, { method: 'POST', path: '/?steps=50' }, { timeoutMs: 100 });
    const body = (await res.json()) as { done: number; stoppedEarly: boolean };
    expect(body.stoppedEarly).toBe(true);
    expect(body.done).toBeLessThan(50);
  });
});
