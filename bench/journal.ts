/**
 * `npm run bench:journal`: the device-state journal alone (runtime/store/journal.ts on the state
 * directory's disk), appends of one state record each, closed loop, with 1, 2 and 4 appends in flight
 * (DeviceService keeps up to 2), on a journal that grows with each append and on one with room made
 * ahead (`preallocate`, as DeviceService opens it). Rounds alternate between the settings, so other load on
 * the machine hits all of them alike. Per setting: appends per second, each append's latency (call to
 * resolve: the synchronous write on the thread pool and the hop back) and this process's CPU time per
 * append (both threads: the write's system time is the pool thread's). Prints a table and writes
 * bench/results/journal-<time>.json.
 *
 * Environment: BENCH_APPENDS (1000 per round and setting), BENCH_ROUNDS (5), BENCH_DIR (where the journal
 * goes; default a temp dir under the OS temp dir: put it on the disk that holds the state directory).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { Journal, type JournalRecord } from '../runtime/store/journal.js';
import { machineFacts, median, percentile } from './stats.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const APPENDS = Number(process.env.BENCH_APPENDS ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
/** Appends in flight, and the room made ahead of them (0: the file grows with each append). */
const SETTINGS = [
  { inFlight: 1, preallocate: 0 },
  { inFlight: 2, preallocate: 0 },
  { inFlight: 4, preallocate: 0 },
  { inFlight: 1, preallocate: 512 * 1024 },
  { inFlight: 2, preallocate: 512 * 1024 },
];
const nameOf = (s: (typeof SETTINGS)[number]) => `${s.inFlight}${s.preallocate ? `, ${s.preallocate / 1024} KiB ahead` : ', growing'}`;

interface StateRecord extends JournalRecord {
  id: string;
  state: Record<string, unknown>;
  updated_at: number;
}

/** One round: APPENDS appends of one record each, `inFlight` at a time; returns the latencies, the wall time and the CPU time (us). */
async function round(journal: Journal<StateRecord>, inFlight: number, seq: { n: number }): Promise<{ latencies: number[]; ms: number; cpuUs: number }> {
  const latencies: number[] = [];
  let issued = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  const writer = async () => {
    while (issued < APPENDS) {
      issued++;
      const record = { seq: ++seq.n, id: `serial-${seq.n % 4}`, state: { state: 'ON', brightness: seq.n % 101 }, updated_at: Date.now() };
      const at = performance.now();
      await journal.append([record]);
      latencies.push(performance.now() - at);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, writer));
  const used = process.cpuUsage(cpu);
  return { latencies, ms: performance.now() - start, cpuUs: used.user + used.system };
}

async function main(): Promise<void> {
  const loadBefore = os.loadavg();
  const dir = mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'clawbox-bench-journal-'));
  try {
    const open = (name: string, preallocate: number) =>
      Journal.open<StateRecord>(path.join(dir, name), {
        logger: pino({ level: 'silent' }),
        valid: (r): r is StateRecord => typeof r === 'object' && r !== null,
        preallocate,
      });
    const growing = (await open('growing.journal', 0)).journal;
    const roomy = (await open('preallocated.journal', 512 * 1024)).journal;
    const journalOf = (s: (typeof SETTINGS)[number]) => (s.preallocate ? roomy : growing);
    const seq = { n: 0 };
    const samples = new Map(SETTINGS.map((s) => [s, { latencies: [] as number[], rates: [] as number[], cpu: [] as number[] }]));
    // Warm-up; the preallocated journal's first room is made meanwhile.
    await round(growing, 1, seq);
    await round(roomy, 1, seq);
    for (let r = 0; r < ROUNDS; r++) {
      for (const setting of r % 2 ? [...SETTINGS].reverse() : SETTINGS) {
        // The growing journal starts empty each round; the preallocated one keeps its room (as the device
        // journal does between its folds: a reset would give back the room it measures).
        if (!setting.preallocate) await growing.reset();
        const { latencies, ms, cpuUs } = await round(journalOf(setting), setting.inFlight, seq);
        const sample = samples.get(setting)!;
        sample.latencies.push(...latencies);
        sample.rates.push((APPENDS / ms) * 1000);
        sample.cpu.push(cpuUs / APPENDS);
      }
    }
    await growing.close();
    await roomy.close();
    const round2 = (n: number) => Math.round(n * 100) / 100;
    const rows = SETTINGS.map((setting) => {
      const { latencies, rates, cpu } = samples.get(setting)!;
      latencies.sort((a, b) => a - b);
      return {
        in_flight: setting.inFlight,
        preallocate_bytes: setting.preallocate,
        appends: latencies.length,
        appends_per_s: Math.round(median(rates)),
        cpu_us_per_append: Math.round(median(cpu)),
        p50_ms: round2(percentile(latencies, 50)),
        p99_ms: round2(percentile(latencies, 99)),
      };
    });
    const machine = machineFacts(loadBefore);
    console.log(`\ndevice journal appends (one record each, O_DSYNC), ${ROUNDS} rounds of ${APPENDS} per setting, in ${dir}`);
    console.log(`${machine.cpus} x ${machine.cpu_model}, Node ${machine.node}, load ${machine.load_average_before[0]} -> ${machine.load_average_after[0]}`);
    console.log('in flight, file             appends/s (median of rounds)  cpu us/append (median)  p50 ms  p99 ms');
    for (const [i, row] of rows.entries()) {
      const cells = [nameOf(SETTINGS[i]!).padEnd(24), String(row.appends_per_s).padStart(32), String(row.cpu_us_per_append).padStart(22)];
      console.log(`${cells.join('  ')}  ${String(row.p50_ms).padStart(6)}  ${String(row.p99_ms).padStart(6)}`);
    }
    const out = path.join(ROOT, 'bench', 'results');
    mkdirSync(out, { recursive: true });
    const file = path.join(out, `journal-${new Date().toISOString().replaceAll(':', '-').replace('.', '-')}.json`);
    writeFileSync(file, `${JSON.stringify({ benchmark: 'journal', machine, appends_per_round: APPENDS, rounds: ROUNDS, results: rows }, null, 2)}\n`);
    console.log(`results: ${path.relative(ROOT, file)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
