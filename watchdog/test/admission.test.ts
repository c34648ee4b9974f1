import { describe, expect, it } from 'vitest';
import { Admission } from '../src/admission.js';
import { WatchdogError } from '../src/errors.js';

describe('Admission', () => {
  it('never limits with max_inflight 0', () => {
    const admission = new Admission({ maxInflight: 0, maxQueue: 0, queueTimeout: 1_000 });
    for (let i = 0; i < 1_000; i++) expect(admission.tryEnter()).toBe(true);
    expect(admission.saturated).toBe(false);
    expect(admission.inflight).toBe(1_000);
  });

  it('rejects at once with queue size 0, like of-watchdog', async () => {
    const admission = new Admission({ maxInflight: 1, maxQueue: 0, queueTimeout: 1_000 });
    expect(admission.tryEnter()).toBe(true);
    expect(admission.tryEnter()).toBe(false);
    expect(admission.saturated).toBe(true);
    const error = await admission.enqueue().admitted.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WatchdogError);
    expect((error as WatchdogError).code).toBe('PILOTLIGHT_OVERLOADED');
    expect((error as WatchdogError).headers['retry-after']).toBe('1');
  });

  it('hands a freed slot to the longest waiter, in order', async () => {
    const admission = new Admission({ maxInflight: 1, maxQueue: 2, queueTimeout: 10_000 });
    admission.tryEnter();
    const order: number[] = [];
    const first = admission.enqueue().admitted.then(() => order.push(1));
    const second = admission.enqueue().admitted.then(() => order.push(2));
    expect(admission.queued).toBe(2);
    admission.leave();
    await first;
    expect(admission.inflight).toBe(1);
    admission.leave();
    await second;
    expect(order).toEqual([1, 2]);
    admission.leave();
    expect(admission.inflight).toBe(0);
  });

  it('times a waiter out with PILOTLIGHT_QUEUE_TIMEOUT and forgets a cancelled one', async () => {
    const admission = new Admission({ maxInflight: 1, maxQueue: 2, queueTimeout: 20 });
    admission.tryEnter();
    const cancelled = admission.enqueue();
    cancelled.cancel();
    expect(admission.queued).toBe(0);
    const error = await admission.enqueue().admitted.catch((e: unknown) => e);
    expect((error as WatchdogError).code).toBe('PILOTLIGHT_QUEUE_TIMEOUT');
    expect(admission.queued).toBe(0);
    admission.leave();
    expect(admission.inflight).toBe(0);
  });
});
