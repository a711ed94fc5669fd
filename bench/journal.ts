/**
 * `npm run bench:journal`: the device-state journal alone (runtime/store/journal.ts on the state
 * directory's disk), appends of one state record each, closed loop, with 1, 2 and 4 appends in flight
 * (DeviceService keeps up to 2). Rounds alternate between the settings, so other load on the machine
 * hits all of them alike. Per setting: appends per second and each append's latency (call to resolve:
 * the synchronous write on the thread pool and the hop back). Prints a table and writes
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
const IN_FLIGHT = [1, 2, 4];

interface StateRecord extends JournalRecord {
  id: string;
  state: Record<string, unknown>;
  updated_at: number;
}

/** One round: APPENDS appends of one record each, `inFlight` at a time; returns the latencies and the wall time. */
async function round(journal: Journal<StateRecord>, inFlight: number, seq: { n: number }): Promise<{ latencies: number[]; ms: number }> {
  const latencies: number[] = [];
  let issued = 0;
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
  return { latencies, ms: performance.now() - start };
}

async function main(): Promise<void> {
  const loadBefore = os.loadavg();
  const dir = mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'clawbox-bench-journal-'));
  try {
    const { journal } = await Journal.open<StateRecord>(path.join(dir, 'devices.journal'), {
      logger: pino({ level: 'silent' }),
      valid: (r): r is StateRecord => typeof r === 'object' && r !== null,
    });
    const seq = { n: 0 };
    const samples = new Map(IN_FLIGHT.map((n) => [n, { latencies: [] as number[], rates: [] as number[] }]));
    await round(journal, 1, seq); // warm-up
    for (let r = 0; r < ROUNDS; r++) {
      for (const inFlight of r % 2 ? [...IN_FLIGHT].reverse() : IN_FLIGHT) {
        await journal.reset();
        const { latencies, ms } = await round(journal, inFlight, seq);
        samples.get(inFlight)!.latencies.push(...latencies);
        samples.get(inFlight)!.rates.push((APPENDS / ms) * 1000);
      }
    }
    await journal.close();
    const round2 = (n: number) => Math.round(n * 100) / 100;
    const rows = IN_FLIGHT.map((inFlight) => {
      const { latencies, rates } = samples.get(inFlight)!;
      latencies.sort((a, b) => a - b);
      return {
        in_flight: inFlight,
        appends: latencies.length,
        appends_per_s: Math.round(median(rates)),
        p50_ms: round2(percentile(latencies, 50)),
        p99_ms: round2(percentile(latencies, 99)),
      };
    });
    const machine = machineFacts(loadBefore);
    console.log(`\ndevice journal appends (one record each, O_DSYNC), ${ROUNDS} rounds of ${APPENDS} per setting, in ${dir}`);
    console.log(`${machine.cpus} x ${machine.cpu_model}, Node ${machine.node}, load ${machine.load_average_before[0]} -> ${machine.load_average_after[0]}`);
    console.log('in flight  appends/s (median of rounds)  p50 ms  p99 ms');
    for (const row of rows) {
      console.log(`${String(row.in_flight).padStart(9)}  ${String(row.appends_per_s).padStart(28)}  ${String(row.p50_ms).padStart(6)}  ${String(row.p99_ms).padStart(6)}`);
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
