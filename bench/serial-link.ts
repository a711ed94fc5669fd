/**
 * `npm run bench:serial-link`: the serial link layer alone, serialport's own binding (reads and writes on
 * libuv's thread pool) against devices/drivers/event-loop-binding.ts (the same syscalls on the event loop),
 * in the same run. Two pty links to one line-protocol simulator process (devices/fixtures/pty-links.py);
 * on each, closed-loop exchanges (`DIM n` -> `OK DIM n`, the next one written when the reply is read) in
 * bursts that alternate between the bindings, so other load on the machine hits both alike.
 *
 * Per binding: CPU time of this process per exchange (user + system: what the binding costs, which other
 * load moves far less than latency) and the round trip's p50/p99. No broker, journal or MQTT: for the
 * whole command path see bench:commands. Prints a table and writes bench/results/serial-link-<time>.json.
 *
 * A third link runs the whole serial-line driver (devices/drivers/serial-line.ts: `execute({brightness})`,
 * template, reply pattern, decoding, its deadline timer) on the event-loop binding: what a command costs the
 * runtime in the driver, without the broker or the journal. With BENCH_COMPARE=<another checkout> that
 * checkout's driver takes its turns too (before/after in one run).
 *
 * Run it with the installed command's node flags to see what the runtime pays (they keep hot code out of
 * TurboFan): `node $(sed -n 's/^#!.* node //p' bin/clawbox.js) --import tsx bench/serial-link.ts`.
 *
 * Environment: BENCH_EXCHANGES (2000 per burst), BENCH_ROUNDS (6 bursts per binding), BENCH_COMPARE.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ReadlineParser } from '@serialport/parser-readline';
import { SerialPort } from 'serialport';
import { eventLoopBinding } from '../devices/drivers/event-loop-binding.js';
import { PtyLinks } from '../devices/fixtures/pty-links.js';
import { LINE_SIM } from '../devices/fixtures/socat.js';
import { machineFacts, median, percentile } from './stats.js';
import { serialEntry } from './serial-entry.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const EXCHANGES = Number(process.env.BENCH_EXCHANGES ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);

interface Link {
  name: string;
  /** One exchange: `DIM n` written, `OK DIM n` read (throws on any other reply). */
  exchange: (n: number) => Promise<void>;
  close: () => Promise<void>;
}

async function openLink(name: string, devicePath: string, binding: typeof SerialPort.binding): Promise<Link> {
  const options = { path: devicePath, baudRate: 115200, autoOpen: false, binding };
  const port = new SerialPort(options as ConstructorParameters<typeof SerialPort>[0]);
  await new Promise<void>((resolve, reject) => port.open((error) => (error ? reject(error) : resolve())));
  const lines: string[] = [];
  let waiting: ((line: string) => void) | null = null;
  port.pipe(new ReadlineParser({ delimiter: '\n' })).on('data', (line: string) => {
    if (waiting) {
      const resolve = waiting;
      waiting = null;
      resolve(line);
    } else lines.push(line);
  });
  const next = () => {
    const line = lines.shift();
    return line === undefined ? new Promise<string>((resolve) => (waiting = resolve)) : Promise.resolve(line);
  };
  const exchange = async (n: number) => {
    port.write(`DIM ${n}\n`);
    const reply = await next();
    if (reply !== `OK DIM ${n}`) throw new Error(`${name}: expected "OK DIM ${n}", got "${reply}"`);
  };
  const close = () => new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve()));
  return { name, exchange, close };
}

/** The serial-line driver of the checkout at `tree` on a pty, as the runtime runs it (one command at a time). */
async function openDriver(name: string, devicePath: string, tree: string): Promise<Link> {
  const { createSerialLineDriver } = (await import(path.join(tree, 'devices', 'drivers', 'serial-line.ts'))) as typeof import('../devices/drivers/serial-line.js');
  const { parseDeviceEntry, toDefinition } = await import('../devices/registry.js');
  const { default: pino } = await import('pino');
  // No status query: this link times the command exchange alone.
  const entry = serialEntry('bench', devicePath, { query: false });

  let online: () => void;
  const opened = new Promise<void>((resolve) => (online = resolve));
  const driver = createSerialLineDriver({
    definition: toDefinition(parseDeviceEntry(entry), 'config'),
    logger: pino({ level: 'silent' }),
    messaging: null as never,
    initialState: {},
    report: () => {},
    setAvailability: (availability) => availability === 'online' && online(),
  });
  await driver.start();
  await opened;
  const exchange = async (n: number) => {
    const state = await driver.execute({ brightness: n }, 1000);
    if (state.brightness !== n) throw new Error(`${name}: expected brightness ${n}, got ${JSON.stringify(state)}`);
  };
  return { name, exchange, close: () => driver.stop() };
}

/** One burst of closed-loop exchanges: round trips (ms) and CPU time of this process (us). */
async function burst(link: Link, count: number): Promise<{ rtts: number[]; cpuUs: number }> {
  const rtts: number[] = [];
  const cpu = process.cpuUsage();
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await link.exchange(i % 101);
    rtts.push(performance.now() - start);
  }
  const used = process.cpuUsage(cpu);
  return { rtts, cpuUs: used.user + used.system };
}

async function main(): Promise<void> {
  const loadBefore = os.loadavg();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clawbox-bench-serial-link-'));
  const compare = process.env.BENCH_COMPARE ? path.resolve(process.env.BENCH_COMPARE) : null;
  const links = new PtyLinks(dir, ['thread-pool', 'event-loop', 'driver', ...(compare ? ['compared-driver'] : [])], LINE_SIM);
  const opened: Link[] = [];
  try {
    await links.start();
    opened.push(await openLink('serialport binding (thread pool)', links.path('thread-pool'), SerialPort.binding));
    opened.push(await openLink('event-loop binding', links.path('event-loop'), eventLoopBinding()));
    opened.push(await openDriver('serial-line driver', links.path('driver'), ROOT));
    if (compare) opened.push(await openDriver(`serial-line driver of ${path.basename(compare)}`, links.path('compared-driver'), compare));
    for (const link of opened) await burst(link, 200); // warm-up
    const results = new Map(opened.map((link) => [link.name, { rtts: [] as number[], cpuPerExchange: [] as number[] }]));
    for (let round = 0; round < ROUNDS; round++) {
      const order = [...opened.slice(round % opened.length), ...opened.slice(0, round % opened.length)];
      for (const link of order) {
        const { rtts, cpuUs } = await burst(link, EXCHANGES);
        const r = results.get(link.name)!;
        r.rtts.push(...rtts);
        r.cpuPerExchange.push(cpuUs / EXCHANGES);
      }
    }
    const round2 = (n: number) => Math.round(n * 100) / 100;
    const rows = [...results].map(([binding, r]) => {
      const sorted = [...r.rtts].sort((a, b) => a - b);
      return {
        binding,
        exchanges: sorted.length,
        cpu_us_per_exchange_median: round2(median(r.cpuPerExchange)),
        cpu_us_per_exchange_bursts: r.cpuPerExchange.map(round2),
        rtt_p50_ms: round2(percentile(sorted, 50)),
        rtt_p99_ms: round2(percentile(sorted, 99)),
        rtt_max_ms: round2(sorted.at(-1) ?? Number.NaN),
      };
    });
    const machine = machineFacts(loadBefore);
    console.log(`\nserial link, closed loop over a pty to one simulator process, ${ROUNDS} bursts of ${EXCHANGES} per link, taking turns`);
    console.log(`(node flags: ${process.execArgv.filter((a) => a.startsWith('--') && !a.startsWith('--import')).join(' ') || 'none'})`);
    console.log(`(${machine.cpus} CPUs, ${machine.cpu_model}, Node ${machine.node}, load ${machine.load_average_before[0]} -> ${machine.load_average_after[0]})`);
    const header = ['binding', 'exchanges', 'cpu us/exchange (median burst)', 'rtt p50 ms', 'rtt p99 ms', 'rtt max ms'];
    const cells = rows.map((r) => [r.binding, r.exchanges, r.cpu_us_per_exchange_median, r.rtt_p50_ms, r.rtt_p99_ms, r.rtt_max_ms].map(String));
    const widths = header.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]!.length)));
    const line = (row: string[]) => row.map((c, i) => c.padStart(widths[i]!)).join('  ');
    console.log(line(header));
    for (const row of cells) console.log(line(row));
    const out = path.join(ROOT, 'bench', 'results');
    mkdirSync(out, { recursive: true });
    const file = path.join(out, `serial-link-${new Date().toISOString().replaceAll(':', '-').replace('.', '-')}.json`);
    writeFileSync(file, `${JSON.stringify({ benchmark: 'serial-link', machine, exchanges_per_burst: EXCHANGES, rounds: ROUNDS, results: rows }, null, 2)}\n`);
    console.log(`results: ${path.relative(ROOT, file)}`);
  } finally {
    for (const link of opened) await link.close();
    await links.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
