import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Admission } from '../admission.js';
import type { Config } from '../config/settings.js';
import { sendError, WatchdogError } from '../errors.js';
import type { Lifecycle } from '../lifecycle.js';
import type { Runner } from '../runners/runner.js';
import { describeSchedules } from './schedules.js';
import type { Identity } from './specialize.js';
import type { Metrics } from '../metrics.js';
import { RuntimeRunner } from '../runners/runtime.js';

/** What the control surface reports on. */
export interface ControlDeps {
  readonly config: Config;
  readonly identity: Identity;
  readonly metrics: Metrics;
  /** The current scale hint, for `GET /_/scale`. */
  readonly scale: () => object;
  /** Serves `POST /_/specialize`. */
  readonly specialize: (req: IncomingMessage, res: ServerResponse) => void;
  readonly lifecycle: Lifecycle;
  readonly admission: Admission;
  readonly runner: Runner;
  readonly version: string;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/**
 * The `/_/` control surface: liveness, readiness and status. Health never depends on the lock
 * file, so `suppress_lock` cannot make a healthy instance look dead.
 */
export function createControl(deps: ControlDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { config, lifecycle, admission, runner } = deps;
  const handlers: Record<string, (res: ServerResponse) => void> = {
    '/_/health': (res) => {
      const healthy = lifecycle.state !== 'failed' && runner.healthy;
      json(res, healthy ? 200 : 503, { status: healthy ? 'ok' : 'unhealthy', state: lifecycle.state });
    },
    '/_/ready': (res) => {
      const state = lifecycle.state;
      if (state !== 'ready') json(res, 503, { ready: false, state });
      else if (admission.saturated) json(res, 429, { ready: false, state, reason: 'at the concurrency limit' });
      else json(res, 200, { ready: true, state });
    },
    '/_/scale': (res) => json(res, 200, deps.scale()),
    '/_/metrics': (res) => {
      void deps.metrics.exposition().then(({ contentType, body }) => {
        res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
        res.end(body);
      });
    },
    '/_/schedules': (res) =>
      json(res, 200, describeSchedules(deps.identity.functionName, runner instanceof RuntimeRunner ? runner.schedules : [])),
    '/_/status': (res) =>
      json(res, 200, {
        state: lifecycle.state,
        mode: config.mode,
        runtime: config.runtime ?? null,
        function: deps.identity.functionName ?? null,
        instance: config.instance,
        inflight: admission.inflight,
        queued: admission.queued,
        specializeMs: deps.identity.specializeMs ?? null,
        version: deps.version,
      }),
  };
  return (req, res) => {
    const path = (req.url as string).split('?', 1)[0] as string;
    if (path === '/_/specialize') {
      if (req.method === 'POST') deps.specialize(req, res);
      else sendError(res, new WatchdogError('PILOTLIGHT_METHOD_NOT_ALLOWED', `${path} takes POST, not ${req.method}`, { allow: 'POST' }));
      return;
    }
    const handler = handlers[path];
    if (!handler) {
      sendError(res, new WatchdogError('PILOTLIGHT_NOT_FOUND', `no control endpoint ${path}`));
    } else if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(res, new WatchdogError('PILOTLIGHT_METHOD_NOT_ALLOWED', `${path} takes GET, not ${req.method}`, { allow: 'GET, HEAD' }));
    } else {
      handler(res);
    }
  };
}
