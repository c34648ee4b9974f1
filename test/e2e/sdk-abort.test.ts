import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SDK_FIXTURES, startSpecialized } from '../support/sdk-helpers.js';
import { killAll, type LogRecord, type RunningWatchdog } from '../support/watchdog.js';

afterAll(killAll);

/** `ctx.signal` tells a function its answer has nobody left to go to. */
describe('the invocation signal of a function in the Node runtime', () => {
  let watchdog: RunningWatchdog;

  beforeAll(async () => {
    watchdog = await startSpecialized({ path: `${SDK_FIXTURES}abort-plain`, function: 'abort-plain' });
  });
  afterAll(() => watchdog?.kill());

  const abandoned = (requestId: string) => (r: LogRecord) => r.stream === 'stdout' && r.msg === 'abandoned' && r.request_id === requestId;

  it('aborts when the watchdog gives up at the deadline', async () => {
    const res = await fetch(`${watchdog.url}/wait`, { headers: { 'x-timeout': '300ms', 'x-request-id': 'abort-deadline' } });
    expect(res.status).toBe(504);
    const line = await watchdog.waitForLog(abandoned('abort-deadline'));
    expect(line.reason).toBe('AbortError');
  });

  it('aborts when the caller goes away', async () => {
    const caller = new AbortController();
    const answer = fetch(`${watchdog.url}/wait`, { headers: { 'x-request-id': 'abort-caller' }, signal: caller.signal });
    await watchdog.waitForLog((r) => r.stream === 'stdout' && r.msg === 'waiting' && r.request_id === 'abort-caller');
    caller.abort();
    await expect(answer).rejects.toThrow();
    const line = await watchdog.waitForLog(abandoned('abort-caller'));
    expect(line.reason).toBe('AbortError');
  });

  it('stays quiet for an invocation that answered', async () => {
    const res = await fetch(`${watchdog.url}/quick`, { headers: { 'x-request-id': 'abort-quick' } });
    expect(await res.text()).toBe('quick');
    const line = await watchdog.waitForLog((r) => r.stream === 'stdout' && r.msg === 'after the answer' && r.request_id === 'abort-quick');
    expect(line.aborted).toBe(false);
  });
});
