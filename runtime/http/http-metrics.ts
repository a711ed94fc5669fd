/**
 * The HTTP server's own Prometheus figures, registered in the runtime's registry (ctx.metrics) while the
 * server runs. Labels are bounded: the route *pattern* (or "unmatched"), a known method, the status code.
 */
import type { Registry } from 'prom-client';
import { Counter, Gauge, Histogram } from '../metrics.js';

const METRIC_NAMES = ['clawbox_http_requests_total', 'clawbox_http_request_duration_seconds', 'clawbox_http_event_streams'];
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export class HttpMetrics {
  readonly #registry: Registry;
  readonly #requests: Counter<'method' | 'route' | 'status'>;
  readonly #duration: Histogram<'method' | 'route'>;

  constructor(registry: Registry, openStreams: () => number) {
    this.#registry = registry;
    this.#requests = new Counter({
      name: 'clawbox_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status code.',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    });
    this.#duration = new Histogram({
      name: 'clawbox_http_request_duration_seconds',
      help: 'Time from request to the end of the response, by method and route pattern (event streams excluded).',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
    // Read at scrape time; the registry keeps the only reference it needs.
    new Gauge({
      name: 'clawbox_http_event_streams',
      help: 'Open live-update streams (status pages watching).',
      registers: [registry],
      collect() {
        this.set(openStreams());
      },
    });
  }

  observe(method: string | undefined, route: string, status: number, seconds: number | null): void {
    const m = method && METHODS.has(method) ? method : 'other';
    this.#requests.inc({ method: m, route, status: String(status) });
    if (seconds !== null) this.#duration.observe({ method: m, route }, seconds);
  }

  /** Takes the figures out of the registry so a restarted server can register them again. */
  remove(): void {
    for (const name of METRIC_NAMES) this.#registry.removeSingleMetric(name);
  }
}
