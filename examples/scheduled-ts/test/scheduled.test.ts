import { invoke } from '@pilotlight/sdk/testing';
import { describe, expect, it } from 'vitest';
import { CleanupFunction } from '../dist/index.js';

describe('CleanupFunction', () => {
  it('runs the schedule when the connector calls it by name, and reports it', async () => {
    expect(await (await invoke(CleanupFunction, { path: '/status' })).json()).toMatchObject({ lastRun: null });
    const run = await invoke(CleanupFunction, { method: 'POST', path: '/', headers: { 'x-pilotlight-schedule': 'purge' } });
    expect(await run.json()).toEqual({ purged: 3 });
    const status = (await (await invoke(CleanupFunction, { path: '/status' })).json()) as { lastRun: { purged: number } };
    expect(status.lastRun.purged).toBe(3);
  });

  it('runs the only schedule for a Knative PingSource event', async () => {
    const run = await invoke(CleanupFunction, { method: 'POST', path: '/', headers: { 'ce-type': 'dev.knative.sources.ping' } });
    expect(await run.json()).toEqual({ purged: 3 });
  });
});
