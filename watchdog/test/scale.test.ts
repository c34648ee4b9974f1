import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { LoadEstimator } from '../src/scale/estimator.js';
import { HintPublisher, type ScaleHint } from '../src/scale/publisher.js';

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('LoadEstimator', () => {
  it("applies Little's law to steady traffic", () => {
    const time = clock();
    const estimator = new LoadEstimator({ capacity: 1, targetUtilization: 0.8, now: time.now });
    // 10 requests per second for 5 s, each taking 100 ms: one slot busy on average.
    for (let i = 0; i < 50; i++) {
      estimator.arrival();
      estimator.completion(0.1);
      time.advance(100);
    }
    const estimate = estimator.estimate({ inflight: 1, queued: 0, saturated: true });
    expect(estimate.arrivalRate).toBeCloseTo(10, 0);
    expect(estimate.meanExecSeconds).toBeCloseTo(0.1, 3);
    expect(estimate.utilization).toBeCloseTo(1, 1);
    expect(estimate.desiredInstances).toBeCloseTo(1.25, 1);
  });

  it('shrinks its window for busy traffic and grows it for sparse traffic', () => {
    const time = clock();
    const busy = new LoadEstimator({ capacity: 1, targetUtilization: 1, now: time.now });
    for (let i = 0; i < 200; i++) busy.arrival();
    expect(busy.estimate({ inflight: 0, queued: 0, saturated: false }).windowSeconds).toBeLessThanOrEqual(1);

    const sparse = new LoadEstimator({ capacity: 1, targetUtilization: 1, now: time.now });
    for (let i = 0; i < 5; i++) {
      sparse.arrival();
      time.advance(5_000);
    }
    const estimate = sparse.estimate({ inflight: 0, queued: 0, saturated: false });
    expect(estimate.windowSeconds).toBeGreaterThan(20);
    expect(estimate.arrivalRate).toBeCloseTo(5 / estimate.windowSeconds, 2);
  });

  it('adds the slots a backlog needs to drain within the start-up time', () => {
    const time = clock();
    const estimator = new LoadEstimator({ capacity: 1, targetUtilization: 1, now: time.now });
    estimator.completion(0.1);
    estimator.startup(0.5);
    // 20 queued requests of 100 ms (2 s of work) must be done in the 0.5 s a new instance needs;
    // the busy slot does 0.5 s of it, the other 1.5 s needs 3 more slots.
    expect(estimator.estimate({ inflight: 1, queued: 20, saturated: true }).desiredInstances).toBeCloseTo(3, 1);
  });

  it('forgets traffic older than its history', () => {
    const time = clock();
    const estimator = new LoadEstimator({ capacity: 1, targetUtilization: 1, now: time.now });
    for (let i = 0; i < 100; i++) estimator.arrival();
    time.advance(120_000);
    expect(estimator.estimate({ inflight: 0, queued: 0, saturated: false }).arrivalRate).toBe(0);
  });
});

function hint(desiredInstances: number, saturated = false): ScaleHint {
  return {
    function: 'f',
    instance: 'i',
    state: 'ready',
    time: '',
    reason: '',
    arrivalRate: 0,
    windowSeconds: 1,
    meanExecSeconds: 0,
    startupSeconds: 0,
    capacity: 1,
    inflight: 0,
    queued: 0,
    utilization: desiredInstances,
    desiredInstances,
    saturated,
    functionHint: null,
  };
}

describe('HintPublisher', () => {
  it('pushes saturation at once, changes at most once per interval, and nothing while steady', async () => {
    const time = clock();
    let current = hint(1);
    const sent: ScaleHint[] = [];
    const publisher = new HintPublisher({
      url: 'http://127.0.0.1:1/hints',
      heartbeatMs: 3_600_000,
      minIntervalMs: 1_000,
      current: () => current,
      send: async (_url, h) => {
        sent.push(h);
      },
      now: time.now,
      logger: pino({ level: 'silent' }),
    });
    publisher.start();
    expect(sent.map((h) => h.reason)).toEqual(['heartbeat']);

    // Steady: small wobbles are not material.
    for (const d of [1.1, 0.9, 1.2]) {
      current = hint(d);
      time.advance(2_000);
      publisher.nudge();
      await new Promise((r) => setImmediate(r));
    }
    expect(sent).toHaveLength(1);

    // Saturation goes out at once, even within the minimum interval.
    current = hint(1.2, true);
    time.advance(10);
    publisher.nudge();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(sent.at(-1)?.reason).toBe('saturated');

    // A material change waits for the minimum interval.
    current = hint(4, true);
    time.advance(10);
    publisher.nudge();
    await new Promise((r) => setImmediate(r));
    expect(sent).toHaveLength(2);
    time.advance(1_000);
    publisher.nudge();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(sent.at(-1)).toMatchObject({ reason: 'changed', desiredInstances: 4 });
    publisher.stop();
  });

  it('retries a failed push twice, then gives up without throwing', async () => {
    const time = clock();
    let calls = 0;
    const publisher = new HintPublisher({
      url: 'http://127.0.0.1:1/hints',
      heartbeatMs: 1_000,
      minIntervalMs: 1_000,
      current: () => hint(1),
      send: async () => {
        calls += 1;
        throw new Error('receiver down');
      },
      now: time.now,
      logger: pino({ level: 'silent' }),
    });
    publisher.start();
    await new Promise((r) => setTimeout(r, 700));
    expect(calls).toBe(3);
    publisher.stop();
  });
});
