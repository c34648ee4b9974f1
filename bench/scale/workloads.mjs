// Closed-loop workloads: each client sends a request, waits for the answer, sends the next, until
// its end time. Every loop is bounded by time; an error backs off 20 ms.
import { setTimeout as sleep } from 'node:timers/promises';
import { now } from './fleet.mjs';

/**
 * A schedule of client groups: { at, until, clients } in ms from the workload start, and `waves`,
 * the moments load steps up (for the reaction time).
 */
export function doubling({ waveMs, steps }) {
  const groups = [];
  const waves = [];
  const end = waveMs * steps.length;
  let running = 0;
  steps.forEach((concurrency, i) => {
    waves.push(i * waveMs);
    if (concurrency > running) groups.push({ at: i * waveMs, until: end, clients: concurrency - running });
    running = Math.max(running, concurrency);
  });
  const clientSeconds = steps.reduce((sum, c) => sum + (c * waveMs) / 1000, 0);
  return { name: 'doubling', describe: `${steps.join(',')} clients, ${waveMs / 1000} s each`, groups, waves, durationMs: end, clientSeconds };
}

export function bursts({ waveMs, waves: count, steady, burst, burstMs, offsetMs }) {
  const end = waveMs * count;
  const groups = [{ at: 0, until: end, clients: steady }];
  const waves = [];
  for (let i = 0; i < count; i++) {
    const at = i * waveMs + offsetMs;
    groups.push({ at, until: at + burstMs, clients: burst });
    waves.push(at);
  }
  const clientSeconds = (steady * end + count * burst * burstMs) / 1000;
  return {
    name: 'burst',
    describe: `${steady} steady clients + ${burst} more for ${burstMs / 1000} s at the end of every ${waveMs / 1000} s, ${count} times`,
    groups,
    waves,
    durationMs: end,
    clientSeconds,
  };
}

/** Runs a workload against `send`; resolves with every sample { t, ms, status } (t from start). */
export async function run(workload, send) {
  const t0 = now();
  const samples = [];
  const errors = [];
  async function client(at, until) {
    await sleep(Math.max(0, t0 + at - now()));
    while (now() < t0 + until) {
      const started = now();
      try {
        const status = await send();
        samples.push({ t: started - t0, ms: now() - started, status });
      } catch (error) {
        errors.push({ t: started - t0, ms: now() - started, error: error.message });
        await sleep(20);
      }
    }
  }
  const clients = [];
  for (const group of workload.groups) for (let i = 0; i < group.clients; i++) clients.push(client(group.at, group.until));
  await Promise.all(clients);
  return { t0, end: now(), samples, errors };
}
