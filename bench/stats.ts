/** Summary statistics shared by the benchmarks (percentiles: nearest rank, as the scheduler reports them). */
import os from 'node:os';
import { percentile as nearestRank } from '../agent/scheduler/stats.js';

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** p-th percentile of already sorted values; NaN when there are none. */
export function percentile(sorted: readonly number[], p: number): number {
  return nearestRank(sorted, p) ?? Number.NaN;
}

/** What a result was measured on, for the JSON every benchmark writes (`loadBefore`: os.loadavg() at the start). */
export interface MachineFacts {
  cpus: number;
  cpu_model: string;
  memory_gb: number;
  node: string;
  kernel: string;
  load_average_before: number[];
  load_average_after: number[];
}

export function machineFacts(loadBefore: number[]): MachineFacts {
  const round2 = (n: number) => Math.round(n * 100) / 100;
  return {
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model ?? 'unknown',
    memory_gb: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    kernel: os.release(),
    load_average_before: loadBefore.map(round2),
    load_average_after: os.loadavg().map(round2),
  };
}
