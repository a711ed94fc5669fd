/** Summary statistics shared by the benchmarks (percentiles: nearest rank, as the scheduler reports them). */
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
