/**
 * Host figures for the status page and /api/status: CPU load and temperature, memory, the disk that holds
 * the state directory, and this process's own memory. systeminformation calls take from milliseconds to
 * half a second, so they run on a background timer and the status provider only reads the
 * last sample: no request ever waits for them. Temperature and disk space are read on every SLOW_EVERY-th
 * sample only: systeminformation gets them by starting processes (df, a shell loop over hwmon, sensors),
 * and forking the runtime every 5 s showed up in its CPU profile under load; they change slowly anyway.
 */
import { loadavg, totalmem, freemem, cpus } from 'node:os';
import { resolve } from 'node:path';
import si from 'systeminformation';

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

interface Sample {
  at: number;
  loadPercent: number;
  temperature: number | null;
  memory: { total: number; available: number } | null;
  disk: SystemFigures['disk'];
}

/** Temperature and disk are sampled every this many samples (30 s at the default 5 s interval). */
const SLOW_EVERY = 6;

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

/**
 * Share of all cores busy since the previous call (since boot on the first), from node:os counters.
 * systeminformation's currentLoad() reads the same counters through `execSync('cat /proc/stat | grep
 * cpu')`: a fork of the runtime that blocks its event loop (and every MQTT client's round trip) on every
 * sample.
 */
function cpuLoadMeter(): () => number {
  let last = { idle: 0, total: 0 };
  return () => {
    let idle = 0;
    let total = 0;
    for (const { times } of cpus()) {
      idle += times.idle;
      total += times.user + times.nice + times.sys + times.idle + times.irq;
    }
    const busy = total - last.total > 0 ? (100 * (total - last.total - (idle - last.idle))) / (total - last.total) : Number.NaN;
    last = { idle, total };
    return busy;
  };
}

export class SystemSampler {
  readonly #intervalMs: number;
  readonly #diskPath: string;
  #sample: Sample | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #firstSample: Promise<void> | undefined;
  #samples = 0;
  readonly #cpuLoad = cpuLoadMeter();

  constructor(options: { intervalMs?: number; diskPath: string }) {
    this.#intervalMs = options.intervalMs ?? 5000;
    this.#diskPath = options.diskPath;
  }

  /** Starts sampling in the background; returns at once. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#firstSample = this.#loop();
  }

  stop(): void {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Resolves after the first sample (tests and the CLI use it; the server never waits for it). */
  whenSampled(): Promise<void> {
    return this.#firstSample ?? Promise.resolve();
  }

  async #loop(): Promise<void> {
    await this.#takeSample();
    if (!this.#running) return;
    // Chained timeouts, not setInterval: a slow sample never overlaps the next.
    this.#timer = setTimeout(() => void this.#loop(), this.#intervalMs);
    this.#timer.unref();
  }

  async #takeSample(): Promise<void> {
    const slow = this.#samples++ % SLOW_EVERY === 0;
    const previous = this.#sample;
    // Each figure fails on its own: a board without a thermal sensor still reports memory and disk.
    const loadPercent = this.#cpuLoad();
    const [memory, temperature, filesystems] = await Promise.allSettled([
      si.mem(),
      slow ? si.cpuTemperature() : Promise.reject(new Error('not sampled this time')),
      slow ? si.fsSize() : Promise.reject(new Error('not sampled this time')),
    ]);
    if (!this.#running) return;
    const main = temperature.status === 'fulfilled' ? temperature.value.main : null;
    this.#sample = {
      at: Date.now(),
      loadPercent: Number.isFinite(loadPercent) ? round1(loadPercent) : Number.NaN,
      // systeminformation reports -1 or null where there is no sensor.
      temperature: slow ? (typeof main === 'number' && Number.isFinite(main) && main > 0 ? round1(main) : null) : (previous?.temperature ?? null),
      memory:
        memory.status === 'fulfilled' && memory.value.total > 0
          ? { total: memory.value.total, available: memory.value.available }
          : null,
      disk: slow ? (filesystems.status === 'fulfilled' ? diskFor(this.#diskPath, filesystems.value) : null) : (previous?.disk ?? null),
    };
  }

  /** The status section: cheap figures from node:os now, systeminformation ones from the last sample. */
  figures(): SystemFigures {
    const sample = this.#sample;
    const total = sample?.memory?.total ?? totalmem();
    // `available` counts reclaimable cache, unlike os.freemem(); prefer it once sampled.
    const available = sample?.memory?.available ?? freemem();
    const usage = process.memoryUsage();
    const [one = 0, five = 0, fifteen = 0] = loadavg();
    return {
      sampled_at: sample ? new Date(sample.at).toISOString() : null,
      cpu: {
        cores: cpus().length,
        load_percent: sample && Number.isFinite(sample.loadPercent) ? sample.loadPercent : null,
        load_avg: [round2(one), round2(five), round2(fifteen)],
        temperature_c: sample?.temperature ?? null,
      },
      memory: {
        total_bytes: total,
        used_bytes: total - available,
        available_bytes: available,
        used_percent: round1(((total - available) / total) * 100),
      },
      disk: sample?.disk ?? null,
      process: { rss_bytes: usage.rss, heap_used_bytes: usage.heapUsed },
    };
  }
}
