/**
 * The scheduler's own figures for the status page: counters since start and a ring of recent outcomes
 * from which p50/p99 per path and the shed rate are computed on demand. Pure bookkeeping; Prometheus
 * metrics are fed from the same events (metrics.ts).
 */

export type Path = 'fast' | 'model' | 'remote';
export type Rung = 'none' | 'fast' | 'short' | 'small' | 'remote';
export type ShedReason = 'estimate' | 'queue_full' | 'evicted' | 'codel' | 'deadline_unreachable' | 'no_model';

export type SchedulerEvent =
  | { type: 'decision'; decision: 'fast' | 'model' | 'remote' | 'busy' | 'no_model'; rung: Rung; decision_us: number }
  | { type: 'shed'; reason: ShedReason; retry_after_ms: number }
  | { type: 'done'; path: Path; rung: Rung; total_ms: number; queue_ms: number; late: boolean }
  | { type: 'miss'; path: Path; rung: Rung; total_ms: number }
  | { type: 'cancelled'; path: Path; stage: 'queued' | 'running' }
  | { type: 'failed'; path: Path; code: string }
  | { type: 'stall'; lane: string; gap_ms: number };

interface RingEntry {
  path: Path | null;
  ms: number;
  /** 'ok' finished in time, 'late' finished or aborted after its deadline, 'shed' answered BUSY. */
  kind: 'ok' | 'late' | 'shed';
}

export interface SchedulerStatsSnapshot {
  decisions: Record<string, number>;
  degraded: Record<string, number>;
  shed: Record<string, number>;
  completed: number;
  deadline_misses: number;
  failed: number;
  cancelled: number;
  stalls: number;
  recent: {
    window: number;
    shed_rate: number | null;
    miss_rate: number | null;
    latency_ms: Record<string, { count: number; p50: number | null; p99: number | null; max: number | null }>;
  };
  decision_us: { p50: number | null; p99: number | null; max: number };
}

export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

const round = (n: number | null) => (n === null ? null : Math.round(n * 10) / 10);

export class SchedulerStats {
  readonly #capacity: number;
  readonly #ring: RingEntry[] = [];
  readonly #decisionUs: number[] = [];
  #decisionMax = 0;
  readonly decisions: Record<string, number> = {};
  readonly degraded: Record<string, number> = {};
  readonly shed: Record<string, number> = {};
  completed = 0;
  deadlineMisses = 0;
  failed = 0;
  cancelled = 0;
  stalls = 0;

  constructor(capacity = 1024) {
    this.#capacity = capacity;
  }

  #push(entry: RingEntry): void {
    this.#ring.push(entry);
    if (this.#ring.length > this.#capacity) this.#ring.shift();
  }

  record(event: SchedulerEvent): void {
    switch (event.type) {
      case 'decision':
        this.decisions[event.decision] = (this.decisions[event.decision] ?? 0) + 1;
        if (event.rung !== 'none') this.degraded[event.rung] = (this.degraded[event.rung] ?? 0) + 1;
        this.#decisionUs.push(event.decision_us);
        if (this.#decisionUs.length > 256) this.#decisionUs.shift();
        this.#decisionMax = Math.max(this.#decisionMax, event.decision_us);
        break;
      case 'shed':
        this.shed[event.reason] = (this.shed[event.reason] ?? 0) + 1;
        this.#push({ path: null, ms: 0, kind: 'shed' });
        break;
      case 'done':
        this.completed++;
        if (event.late) this.deadlineMisses++;
        this.#push({ path: event.path, ms: event.total_ms, kind: event.late ? 'late' : 'ok' });
        break;
      case 'miss':
        this.deadlineMisses++;
        this.#push({ path: event.path, ms: event.total_ms, kind: 'late' });
        break;
      case 'cancelled':
        this.cancelled++;
        break;
      case 'failed':
        this.failed++;
        break;
      case 'stall':
        this.stalls++;
        break;
    }
  }

  snapshot(): SchedulerStatsSnapshot {
    const byPath = new Map<string, number[]>();
    let shed = 0;
    let late = 0;
    for (const entry of this.#ring) {
      if (entry.kind === 'shed') shed++;
      else {
        if (entry.kind === 'late') late++;
        const list = byPath.get(entry.path ?? 'model') ?? [];
        list.push(entry.ms);
        byPath.set(entry.path ?? 'model', list);
      }
    }
    const latency: SchedulerStatsSnapshot['recent']['latency_ms'] = {};
    for (const [path, values] of byPath) {
      values.sort((a, b) => a - b);
      latency[path] = { count: values.length, p50: round(percentile(values, 50)), p99: round(percentile(values, 99)), max: round(values.at(-1) ?? null) };
    }
    const us = [...this.#decisionUs].sort((a, b) => a - b);
    const total = this.#ring.length;
    return {
      decisions: { ...this.decisions },
      degraded: { ...this.degraded },
      shed: { ...this.shed },
      completed: this.completed,
      deadline_misses: this.deadlineMisses,
      failed: this.failed,
      cancelled: this.cancelled,
      stalls: this.stalls,
      recent: {
        window: total,
        shed_rate: total ? Math.round((shed / total) * 1000) / 1000 : null,
        miss_rate: total - shed > 0 ? Math.round((late / (total - shed)) * 1000) / 1000 : null,
        latency_ms: latency,
      },
      decision_us: { p50: round(percentile(us, 50)), p99: round(percentile(us, 99)), max: round(this.#decisionMax) ?? 0 },
    };
  }
}
