/**
 * Thread counts that follow free cores, not all cores. llama.cpp's CPU threads busy-wait at every
 * synchronisation point: with a core taken by another process, threads=2 was measured 25-100x slower per
 * token than threads=1 on a 2-core box. So the default leaves headroom for the broker and the event loop
 * and counts only cores that other processes are not using right now; `sampleFreeCores` re-measures it.
 */
import os from 'node:os';

export interface ThreadInputs {
  /** Physical performance cores (llama.cpp's "math cores"), or logical cores when unknown. */
  mathCores: number;
  /** CPUs this process may run on (cgroup / affinity aware). */
  availableCpus: number;
  /** Cores not busy with other processes, from a recent sample; defaults to availableCpus. */
  freeCores?: number;
  /** Cores to leave for the broker, HTTP and the event loop. Default 1 (0.5 on a single core box). */
  headroom?: number;
}

export interface ThreadChoice {
  /** For single-token decoding: synchronises every token, so it is the most sensitive to a busy core. */
  threads: number;
  /** For prompt (batch) evaluation: scales with cores, a short burst. */
  batchThreads: number;
  reason: string;
}

export function chooseThreads(inputs: ThreadInputs): ThreadChoice {
  const cpus = Math.max(1, Math.floor(inputs.availableCpus));
  const cap = Math.max(1, Math.min(Math.floor(inputs.mathCores), cpus));
  const free = Math.max(0, Math.min(inputs.freeCores ?? cpus, cpus));
  const headroom = inputs.headroom ?? (cpus > 1 ? 1 : 0.5);
  const threads = clamp(Math.floor(free - headroom), 1, cap);
  // A batch is short and scales with threads, so it may use the headroom, but never a busy core.
  const batchThreads = clamp(Math.floor(free + 0.25), 1, cap);
  return {
    threads,
    batchThreads: Math.max(batchThreads, threads),
    reason: `${cap} math cores, ${free.toFixed(2)} free of ${cpus} CPUs, headroom ${headroom}`,
  };
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, n));
}

export function availableCpus(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

function cpuTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const cpu of os.cpus()) {
    const t = cpu.times;
    const all = t.user + t.nice + t.sys + t.idle + t.irq;
    total += all;
    busy += all - t.idle;
  }
  return { busy, total };
}

/**
 * Cores not used by other processes over `ms`: machine busy time minus this process's own CPU time
 * (our own llama threads spinning must not count as "taken"). Works wherever os.cpus() reports times.
 */
export async function sampleFreeCores(ms = 250): Promise<number> {
  const cpus = os.cpus().length || 1;
  const a = cpuTimes();
  const ownA = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const b = cpuTimes();
  const own = process.cpuUsage(ownA);
  const totalMs = (b.total - a.total) / cpus; // wall time per CPU, in ms
  if (totalMs <= 0) return availableCpus();
  const busyCores = (b.busy - a.busy) / totalMs;
  const ownCores = (own.user + own.system) / 1000 / totalMs;
  const others = Math.max(0, busyCores - ownCores);
  return Math.max(0, Math.min(availableCpus(), cpus - others));
}
