/**
 * The scheduler's Prometheus figures in the runtime registry (ctx.metrics), fed from scheduler events.
 * Labels are bounded: decision, rung, shed reason and path each come from a fixed set.
 */
import type { Registry } from 'prom-client';
import { Counter, Gauge, Histogram } from '../../runtime/metrics.js';
import type { SchedulerEvent } from './stats.js';

const NAMES = [
  'clawbox_scheduler_decisions_total',
  'clawbox_scheduler_degraded_total',
  'clawbox_scheduler_shed_total',
  'clawbox_scheduler_deadline_misses_total',
  'clawbox_scheduler_failed_total',
  'clawbox_scheduler_stalls_total',
  'clawbox_scheduler_latency_seconds',
  'clawbox_scheduler_queue_length',
  'clawbox_scheduler_running',
  'clawbox_scheduler_concurrency_limit',
];

export interface SchedulerGauges {
  queued(): number;
  running(): number;
  concurrency(): number;
}

export class SchedulerMetrics {
  readonly #registry: Registry;
  readonly #decisions: Counter<'decision'>;
  readonly #degraded: Counter<'rung'>;
  readonly #shed: Counter<'reason'>;
  readonly #misses: Counter<'path'>;
  readonly #failed: Counter<'path'>;
  readonly #stalls: Counter<'lane'>;
  readonly #latency: Histogram<'path'>;

  constructor(registry: Registry, gauges: SchedulerGauges) {
    this.#registry = registry;
    const registers = [registry];
    this.#decisions = new Counter({
      name: 'clawbox_scheduler_decisions_total',
      help: 'Admission decisions for agent requests: fast, model, remote, busy, no_model.',
      labelNames: ['decision'],
      registers,
    });
    this.#degraded = new Counter({
      name: 'clawbox_scheduler_degraded_total',
      help: 'Admitted requests that took a rung of the degrade ladder: fast, short, small, remote.',
      labelNames: ['rung'],
      registers,
    });
    this.#shed = new Counter({
      name: 'clawbox_scheduler_shed_total',
      help: 'Requests answered BUSY (or MODEL_NOT_LOADED), by reason: estimate, queue_full, evicted, codel, deadline_unreachable, no_model.',
      labelNames: ['reason'],
      registers,
    });
    this.#misses = new Counter({
      name: 'clawbox_scheduler_deadline_misses_total',
      help: 'Admitted requests that finished after, or were aborted at, their deadline.',
      labelNames: ['path'],
      registers,
    });
    this.#failed = new Counter({
      name: 'clawbox_scheduler_failed_total',
      help: 'Admitted requests that failed with an error other than their deadline.',
      labelNames: ['path'],
      registers,
    });
    this.#stalls = new Counter({
      name: 'clawbox_scheduler_stalls_total',
      help: 'Inter-token gaps far above the average (another process took a core); each slows the estimate at once.',
      labelNames: ['lane'],
      registers,
    });
    this.#latency = new Histogram({
      name: 'clawbox_scheduler_latency_seconds',
      help: 'Arrival to answer of completed agent requests, by path (fast, model, remote).',
      labelNames: ['path'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.5, 1, 2.5],
      registers,
    });
    new Gauge({
      name: 'clawbox_scheduler_queue_length',
      help: 'Model requests waiting for a sequence.',
      registers,
      collect() {
        this.set(gauges.queued());
      },
    });
    new Gauge({
      name: 'clawbox_scheduler_running',
      help: 'Model requests running now.',
      registers,
      collect() {
        this.set(gauges.running());
      },
    });
    new Gauge({
      name: 'clawbox_scheduler_concurrency_limit',
      help: 'Parallel model sequences allowed now (tuned from measurements when max_concurrency is auto).',
      registers,
      collect() {
        this.set(gauges.concurrency());
      },
    });
  }

  observe(event: SchedulerEvent): void {
    switch (event.type) {
      case 'decision':
        this.#decisions.inc({ decision: event.decision });
        if (event.rung !== 'none') this.#degraded.inc({ rung: event.rung });
        break;
      case 'shed':
        this.#shed.inc({ reason: event.reason });
        break;
      case 'done':
        this.#latency.observe({ path: event.path }, event.total_ms / 1000);
        if (event.late) this.#misses.inc({ path: event.path });
        break;
      case 'miss':
        this.#misses.inc({ path: event.path });
        break;
      case 'failed':
        this.#failed.inc({ path: event.path });
        break;
      case 'stall':
        this.#stalls.inc({ lane: event.lane });
        break;
      case 'cancelled':
        break;
    }
  }

  /** Takes the figures out of the registry so a restarted component can register them again. */
  remove(): void {
    for (const name of NAMES) this.#registry.removeSingleMetric(name);
  }
}
