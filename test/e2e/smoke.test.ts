import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURES, freePort, killAll, startWatchdog } from '../support/watchdog.js';

afterAll(killAll);

describe('smoke', () => {
  it('serves the hello example in http mode', async () => {
    const upstream = await freePort();
    const watchdog = await startWatchdog({
      env: { UPSTREAM_PORT: String(upstream), PILOTLIGHT_UPSTREAM_URL: `http://127.0.0.1:${upstream}` },
      args: ['--', process.execPath, `${FIXTURES}/../../examples/hello-http/server.js`],
    });
    const res = await fetch(`${watchdog.url}/`, { headers: { name: 'pilot' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('hello pilot\n');
  });
});
