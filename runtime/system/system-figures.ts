/**
 * Host figures for the status page and /api/status: CPU load and temperature, memory, the disk that holds
 * the state directory, and this process's own memory. CPU load and memory come from node:os counters on a
 * background timer (cheap, no processes). Temperature and disk come from systeminformation, which gets
 * them by starting processes (df, a shell loop over hwmon, sensors) and is costly in RSS to load:
 * it is imported the first time someone reads the figures, and sampled again only while someone keeps
 * reading them (at most every SLOW_EVERY-th tick), so an appliance nobody is looking at neither loads it
 * nor forks every 30 s. No read ever waits for a sample: it gets the last one.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { availableParallelism, cpus, freemem, loadavg, totalmem } from 'node:os';
import { resolve } from 'node:path';
import type si from 'systeminformation';
import { isoTimestamp } from './timestamps.js';

export interface SystemFigures {
  /** When the last systeminformation sample finished (ISO time), or null before the first one. */
  sampled_at: string | null;
  cpu: {
    cores: number;
    /** Share of all cores busy since the previous sample, 0–100; null before the first sample. */
    load_percent: number | null;
    load_avg: [number, number, number];
    /** Main CPU temperature in °C where the platform reports one (most ARM boards do, VMs often do not). */
    temperature_c: number | null;
  };
  memory: { total_bytes: number; used_bytes: number; available_bytes: number; used_percent: number };
  /** The filesystem holding the state directory; null until sampled or if none matched. */
  disk: { mount: string; total_bytes: number; used_bytes: number; available_bytes: number; used_percent: number } | null;
  process: { rss_bytes: number; heap_used_bytes: number };
}

/** What systeminformation reported: the figures that need it. */
interface SlowSample {
  at: number;
  temperature: number | null;
  disk: SystemFigures['disk'];
}

/** Temperature and disk are sampled at most every this many ticks (30 s at the default 5 s interval). */
const SLOW_EVERY = 6;

type SystemInformation = typeof si;
let systemInformation: Promise<SystemInformation> | undefined;
/** systeminformation, imported once, on first need. */
function loadSystemInformation(): Promise<SystemInformation> {
  systemInformation ??= import('systeminformation').then((m) => m.default);
  return systemInformation;
}

const round1 = (n: number): number => Math.round(n * 10) / 10;
const round2 = (n: number): number => Math.round(n * 100) / 100;

/** The mounted filesystem whose mount point is the longest prefix of `path`. */
export function diskFor(path: string, filesystems: readonly si.Systeminformation.FsSizeData[]): SystemFigures['disk'] {
  const target = resolve(path);
  let best: si.Systeminformation.FsSizeData | undefined;
  for (const fs of filesystems) {
    const mount = fs.mount.endsWith('/') ? fs.mount : `${fs.mount}/`;
    const inside = target === fs.mount || `${target}/`.startsWith(mount);
    if (inside && (!best || fs.mount.length > best.mount.length)) best = fs;
  }
  if (!best || !(best.size > 0)) return null;
  return {
    mount: best.mount,
    total_bytes: best.size,
    used_bytes: best.used,
    available_bytes: best.available,
    // As df reports it: blocks reserved for root count as neither used nor available.
    used_percent: Number.isFinite(best.use) ? round1(best.use) : round1((best.used / (best.used + best.available)) * 100),
  };
}

/** CPU time since boot, all cores together, in any unit (only differences count). */
interface CpuTimes {
  idle: number;
  total: number;
}

/**
 * The aggregate `cpu` line of /proc/stat (user nice system idle iowait irq softirq steal), read into a
 * buffer kept for it. Not os.cpus(): libuv's uv_cpu_info callocs and zero-fills a table for 8,192 CPUs
 * (448 KiB) on every call and reads a cpufreq file per core; once that block has been freed, glibc serves
 * blocks of that size from its heap instead of fresh mappings, so a sample every few seconds leaves
 * zero-filled holes between live allocations that RSS keeps. Undefined where there is no /proc/stat.
 */
function procStatReader(): () => CpuTimes | undefined {
  // The first line is short (ten numbers); the rest of the file (per core, interrupts) is not needed.
  const buffer = Buffer.allocUnsafe(512);
  return () => {
    let fd: number | undefined;
    try {
      fd = openSync('/proc/stat', 'r');
      const length = readSync(fd, buffer, 0, buffer.length, 0);
      const line = buffer.toString('latin1', 0, length).split('\n', 1)[0] ?? '';
      if (!line.startsWith('cpu ')) return undefined;
      const fields = line.slice(4).trim().split(/\s+/).map(Number);
      if (fields.length < 4 || fields.some((n) => !Number.isFinite(n))) return undefined;
      // idle and iowait are both time with nothing to run; steal is time the host took (counted as busy).
      const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
      return { idle: idle + iowait, total: user + nice + system + idle + iowait + irq + softirq + steal };
    } catch {
      return undefined;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  };
}

/** The same counters from node:os, where there is no /proc/stat (macOS in development). */
function osCpuTimes(): CpuTimes {
  let idle = 0;
  let total = 0;
  for (const { times } of cpus()) {
    idle += times.idle;
    total += times.user + times.nice + times.sys + times.idle + times.irq;
  }
  return { idle, total };
}

/**
 * Share of all cores busy since the previous call (since boot on the first). systeminformation's
 * currentLoad() reads the same counters through `execSync('cat /proc/stat | grep cpu')`: a fork of the
 * runtime that blocks its event loop (and every MQTT client's round trip) on every sample.
 */
export function cpuLoadMeter(readProcStat: () => CpuTimes | undefined = procStatReader()): () => number {
  let last: CpuTimes = { idle: 0, total: 0 };
  // Chosen on the first call and kept: the two count in different units.
  let fromProc: boolean | undefined;
  return () => {
    const sample = fromProc === false ? undefined : readProcStat();
    fromProc ??= sample !== undefined;
    const times = fromProc ? sample : osCpuTimes();
    if (!times) return Number.NaN;
    const busy = times.total - last.total > 0 ? (100 * (times.total - last.total - (times.idle - last.idle))) / (times.total - last.total) : Number.NaN;
    last = times;
    return busy;
  };
}

export class SystemSampler {
  readonly #intervalMs: number;
  readonly #diskPath: string;
  readonly #cpuLoad = cpuLoadMeter();
  #loadPercent = Number.NaN;
  #slow: SlowSample | undefined;
  /** The slow sample under way, if any: never two at once. */
  #slowSampling: Promise<void> | undefined;
  /** Someone read the figures since the last slow sample started. */
  #readSinceSlow = false;
  #timer: NodeJS.Timeout | undefined;
  #running = false;

  constructor(options: { intervalMs?: number; diskPath: string }) {
    this.#intervalMs = options.intervalMs ?? 5000;
    this.#diskPath = options.diskPath;
  }

  /** Starts the cheap background ticks (CPU load); returns at once. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#tick();
  }

  stop(): void {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Resolves once temperature and disk have been sampled (tests use it; the server never waits). Counts
   * as a read: it starts the first slow sample if none has run.
   */
  async whenSampled(): Promise<void> {
    this.#wanted();
    await this.#slowSampling;
  }

  #tick(): void {
    const load = this.#cpuLoad();
    if (Number.isFinite(load)) this.#loadPercent = round1(load);
    if (this.#readSinceSlow && this.#slow && Date.now() - this.#slow.at >= SLOW_EVERY * this.#intervalMs) this.#sampleSlow();
    // Chained timeouts, not setInterval: a stopped sampler leaves nothing behind.
    this.#timer = setTimeout(() => this.#running && this.#tick(), this.#intervalMs);
    this.#timer.unref();
  }

  /** A read: the first one starts the first slow sample; later ones keep the slow samples going. */
  #wanted(): void {
    this.#readSinceSlow = true;
    if (!this.#slow && this.#running) this.#sampleSlow();
  }

  #sampleSlow(): void {
    if (this.#slowSampling) return;
    this.#readSinceSlow = false;
    this.#slowSampling = this.#takeSlowSample().finally(() => {
      this.#slowSampling = undefined;
    });
  }

  async #takeSlowSample(): Promise<void> {
    // Each figure fails on its own: a board without a thermal sensor still reports its disk.
    const [temperature, filesystems] = await Promise.allSettled([
      loadSystemInformation().then((s) => s.cpuTemperature()),
      loadSystemInformation().then((s) => s.fsSize()),
    ]);
    if (!this.#running) return;
    const main = temperature.status === 'fulfilled' ? temperature.value.main : null;
    this.#slow = {
      at: Date.now(),
      // systeminformation reports -1 or null where there is no sensor.
      temperature: typeof main === 'number' && Number.isFinite(main) && main > 0 ? round1(main) : null,
      disk: filesystems.status === 'fulfilled' ? diskFor(this.#diskPath, filesystems.value) : null,
    };
  }

  /** The status section: node:os figures now, temperature and disk from the last slow sample. */
  figures(): SystemFigures {
    this.#wanted();
    const slow = this.#slow;
    const total = totalmem();
    // On Linux, libuv reads MemAvailable, which counts reclaimable cache (what `free` calls available).
    const available = freemem();
    const usage = process.memoryUsage();
    const [one = 0, five = 0, fifteen = 0] = loadavg();
    return {
      sampled_at: slow ? isoTimestamp(slow.at) : null,
      cpu: {
        // The CPUs this process may run on (sched_getaffinity), without os.cpus()'s table (see procStatReader).
        cores: availableParallelism(),
        load_percent: Number.isFinite(this.#loadPercent) ? this.#loadPercent : null,
        load_avg: [round2(one), round2(five), round2(fifteen)],
        temperature_c: slow?.temperature ?? null,
      },
      memory: {
        total_bytes: total,
        used_bytes: total - available,
        available_bytes: available,
        used_percent: round1(((total - available) / total) * 100),
      },
      disk: slow?.disk ?? null,
      process: { rss_bytes: usage.rss, heap_used_bytes: usage.heapUsed },
    };
  }
}
