/**
 * GET /readyz: may this replica take traffic now? 200 `{"status":"ready"}` when the runtime is serving
 * and every registered check passes, else 503 `{"status":"not_ready","state","failing":[names]}`. Public
 * like /healthz (Kubernetes probes carry no token).
 *
 * /healthz says whether the process is alive (a failing liveness probe restarts it); /readyz says whether
 * it can do its work (a failing readiness probe only takes it out of the Service). In cluster mode the
 * shared Redis is a readiness check: a replica that cannot reach it cannot store or fan out messages, but
 * restarting it would not help.
 */
import type { LifecycleState } from '../events.js';
import { sendJson } from './respond.js';
import type { HttpMethod, RouteHandler, RouteOptions } from './router.js';

export type ReadinessCheck = () => boolean;

interface RouteTable {
  addRoute(method: HttpMethod, path: string, handler: RouteHandler, options?: RouteOptions): () => void;
}

export function registerReadiness(http: RouteTable, lifecycleState: () => LifecycleState, checks: Readonly<Record<string, ReadinessCheck>>): () => void {
  return http.addRoute(
    'GET',
    '/readyz',
    ({ res }) => {
      const state = lifecycleState();
      const failing = Object.entries(checks)
        .filter(([, check]) => {
          try {
            return !check();
          } catch {
            return true;
          }
        })
        .map(([name]) => name);
      if (state === 'serving' && failing.length === 0) sendJson(res, 200, { status: 'ready' });
      else sendJson(res, 503, { status: 'not_ready', state, failing });
    },
    { public: true },
  );
}
