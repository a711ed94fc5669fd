/**
 * `npm run bench:commands`: open-loop MQTT `set` commands to serial-line devices over pseudo-terminals
 * (a line-protocol simulator on the far end of each), at 100, 500 and 1,000 commands/s for 10 s
 * each. Latency is command published -> state published on `clawbox/<device>` (or the error), as seen
 * by the MQTT client. Baseline in the same run: the same load on simulated devices (no serial I/O), so
 * the serial path's own cost is visible; a third set of serial devices runs with `serial.pipeline`. The
 * sets take turns in short slices, so other jobs on the machine load all of them alike.
 *
 * Processes: this one is the load generator and MQTT client; the runtime part (embedded broker +
 * DeviceService, the real components) runs in a child process (`--serve`), as it would in `clawbox start`;
 * the device simulator is its own process: by default one process holding the pty master of every device
 * (devices/fixtures/pty-links.py: the runtime opens a tty as it opens a USB adapter, with no relay between),
 * or with BENCH_LINK=socat a socat pty pair and a simulator process per device (the harness of the conformance
 * tests: 2 processes per device that wake on every line and share the cores with the runtime). Prints a table, the ratios to the baseline and, per
 * driver, where the time went inside the runtime; writes bench/results/commands-<time>.json.
 *
 * With pty links, each serial round trip is also split at the far end's read and write of the line (both
 * processes time it on CLOCK_MONOTONIC): out, the far end's turn, back; and each far-end process's CPU per
 * command is given. A fourth set, `serial-line native far end`, has line-device-sim.c (built with cc) as its
 * far end: the same runtime path with the harness's CPU on the cores cut to a few microseconds a line.
 * The goal lines are the Node far end's set's; the native set's figures are printed beside them.
 *
 * Environment: BENCH_RATES (default "100,500,1000"), BENCH_SECONDS (10, per driver and rate),
 * BENCH_SLICE_SECONDS (2), BENCH_DEVICES (4 per set), BENCH_PIPELINE (8; 0 leaves the pipelined set out),
 * BENCH_NATIVE_FAR_END (0 leaves the native far end's set out),
 * BENCH_CPU_PROF (a folder: the runtime side writes a V8 CPU profile there), BENCH_LINK ("pty" or "socat"),
 * BENCH_COMPARE (another checkout, e.g. `git worktree add /tmp/before <commit>`: its runtime runs too, on
 * devices of its own, taking turns with this one slice by slice, so before and after see the same machine
 * load; BENCH_COMPARE_LABEL names it where it has no git), BENCH_RUNTIME_FLAGS (how node runs the runtime side:
 * "installed", the default, takes the environment and flags of bin/clawbox.js's `#!` line, as the installed
 * command runs; "none" is plain node; anything else is a list like "MALLOC_ARENA_MAX=2 --max-semi-space-size=4"),
 * BENCH_COMPARE_FLAGS (the same for the compared runtime; BENCH_COMPARE=. with BENCH_COMPARE_FLAGS=none
 * compares this checkout with and without the installed flags in one run). The last lines say whether
 * issue 17's goals for the serial path were met in this run.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { PtyLinks, buildNativeLineSimulator } from '../devices/fixtures/pty-links.js';
import { LINE_SIM, SerialRig } from '../devices/fixtures/socat.js';
import { installedCommandLine, splitEnvAndFlags } from './runtime-process.js';
import { percentile } from './stats.js';
import { serialEntry } from './serial-entry.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RATES = (process.env.BENCH_RATES ?? '100,500,1000').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const DEVICES = Number(process.env.BENCH_DEVICES ?? 4);
const SLICE_SECONDS = Number(process.env.BENCH_SLICE_SECONDS ?? 2);
/** A third set of serial devices with `serial.pipeline` this high takes turns too (0: none). */
const PIPELINE = Number(process.env.BENCH_PIPELINE ?? 8);
/**
 * A fourth set of serial devices whose far end is devices/fixtures/line-device-sim.c (built here with cc)
 * instead of the Node simulator: the same protocol and runtime path with the harness's own CPU and
 * wake-ups on the runtime's cores made small (a real device answers on its own chip). "0" leaves it out;
 * pty links only. The goal lines stay those of the Node far end's set.
 */
const NATIVE_FAR_END = process.env.BENCH_NATIVE_FAR_END !== '0';
/** How the serial devices are attached: one simulator process on pty masters, or socat + a simulator per device. */
const LINK = process.env.BENCH_LINK ?? 'pty';
if (LINK !== 'pty' && LINK !== 'socat') throw new Error('BENCH_LINK must be "pty" or "socat"');
const HARNESS =
  LINK === 'pty'
    ? 'one simulator process holding every pty master (no relay)'
    : 'a socat pty pair and a simulator process per device';

/** How node runs a runtime side: environment variables and node flags. */
interface NodeRun {
  label: string;
  env: Record<string, string>;
  flags: string[];
}

/** Reads BENCH_RUNTIME_FLAGS / BENCH_COMPARE_FLAGS for the checkout at `tree` (see the header). */
function nodeRun(spec: string | undefined, tree: string): NodeRun {
  if (spec === 'none') return { label: 'plain node', env: {}, flags: [] };
  if (spec && spec !== 'installed') return { label: spec, ...splitEnvAndFlags(spec.split(/\s+/).filter(Boolean)) };
  const run = installedCommandLine(path.join(tree, 'bin', 'clawbox.js'));
  return { ...run, label: `installed (${[...Object.entries(run.env).map(([k, v]) => `${k}=${v}`), ...run.flags].join(' ') || 'no flags'})` };
}

const log = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A serial device's driver calls since the last reset: the `first`-th call of its life onwards, with the
 * driver's turn (label) each was made in, and when it was called and returned (CLOCK_MONOTONIC, us; NaN
 * when it failed).
 */
interface Exchanges {
  first: number;
  label: string[];
  start: number[];
  end: number[];
}

/** p50 / p99 (ms) of the three parts of a serial round trip, as the runtime and the simulator timed them. */
interface LinkParts {
  n: number;
  out: { p50_ms: number; p99_ms: number };
  far_end: { p50_ms: number; p99_ms: number };
  back: { p50_ms: number; p99_ms: number };
}

/**
 * The driver's round trips split at the simulator's read and write of each line: out (the runtime's write,
 * the ptys, the simulator waking up), the far end (the simulator's turn: harness, not product), back (the
 * ptys, the runtime waking up and reading the reply). Per driver label; devices whose counts do not line
 * up (a command that failed before reaching the wire) are left out.
 */
function linkParts(exchanges: Record<string, Exchanges>, times: Map<string, number[]>, linkOf: (id: string) => string): Record<string, LinkParts> {
  const parts = new Map<string, { out: number[]; far: number[]; back: number[] }>();
  for (const [id, mine] of Object.entries(exchanges)) {
    const sim = times.get(linkOf(id));
    if (!sim || sim.length < 2 * (mine.first + mine.start.length) || mine.end.some(Number.isNaN)) continue;
    for (let k = 0; k < mine.start.length; k++) {
      const i = mine.first + k;
      const read = sim[2 * i]!;
      const wrote = sim[2 * i + 1]!;
      const list = parts.get(mine.label[k]!) ?? { out: [], far: [], back: [] };
      parts.set(mine.label[k]!, list);
      list.out.push((read - mine.start[k]!) / 1000);
      list.far.push((wrote - read) / 1000);
      list.back.push((mine.end[k]! - wrote) / 1000);
    }
  }
  const round = (n: number) => Math.round(n * 100) / 100;
  const summary = (list: number[]) => {
    list.sort((a, b) => a - b);
    return { p50_ms: round(percentile(list, 50)), p99_ms: round(percentile(list, 99)) };
  };
  return Object.fromEntries(
    [...parts].map(([label, list]) => [label, { n: list.out.length, out: summary(list.out), far_end: summary(list.far), back: summary(list.back) }]),
  );
}

/** Durations of named stages (ms), reported as p50/p99 per run. */
class StageTimes {
  #samples = new Map<string, Map<string, number[]>>();
  /** Which load is running (the driver), so that each stage's times are told apart per driver. */
  label = 'start';

  time<T>(stage: string, work: Promise<T>): Promise<T> {
    const start = performance.now();
    const label = this.label;
    const done = () => this.#add(label, stage, performance.now() - start);
    work.then(done, done);
    return work;
  }

  /** A duration measured elsewhere. */
  record(stage: string, ms: number): void {
    this.#add(this.label, stage, ms);
  }

  #add(label: string, stage: string, ms: number): void {
    const stages = this.#samples.get(label) ?? new Map<string, number[]>();
    this.#samples.set(label, stages);
    const list = stages.get(stage) ?? [];
    stages.set(stage, list);
    if (list.length < 200_000) list.push(ms);
  }

  reset(): void {
    this.#samples.clear();
  }

  report(): Record<string, Record<string, { n: number; p50_ms: number; p99_ms: number }>> {
    const round = (n: number) => Math.round(n * 100) / 100;
    const out: Record<string, Record<string, { n: number; p50_ms: number; p99_ms: number }>> = {};
    for (const [label, stages] of this.#samples) {
      out[label] = {};
      for (const [stage, list] of stages) {
        list.sort((a, b) => a - b);
        out[label][stage] = { n: list.length, p50_ms: round(percentile(list, 50)), p99_ms: round(percentile(list, 99)) };
      }
    }
    return out;
  }
}

// ---- the runtime side (child process) -----------------------------------------------------------------

async function serve(configFile: string): Promise<void> {
  const { startFrontDoorStack } = await import('../app/testing/front-door-stack.js');
  const { DeviceService } = await import('../devices/device-service.js');
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  // `<base>/<device>/set` is answered through the front door, as app.ts wires it.
  const stack = await startFrontDoorStack({ config, logLevel: 'warn' });
  const { broker, frontDoor } = stack;
  // Where the runtime's time goes, per command: each stage timed from inside the runtime process.
  const stages = new StageTimes();
  const { Journal } = await import('../runtime/store/journal.js');
  type Journal = import('../runtime/store/journal.js').Journal<import('../runtime/store/journal.js').JournalRecord>;
  const { loadBuiltinDriver } = await import('../devices/drivers/index.js');
  const append = Journal.prototype.append;
  Journal.prototype.append = function (this: Journal, records, toLine?: never) {
    return stages.time('journal append', append.call(this, records, toLine) as Promise<void>);
  };
  // The journal's fold into the document ends with its reset; states made meanwhile wait for it.
  const reset = Journal.prototype.reset;
  Journal.prototype.reset = function (this: Journal) {
    return stages.time('journal reset (fold)', reset.call(this));
  };
  // From a state change (the service emits device.state, then journals it) to the start of its publish, which
  // follows once the journal write holding it is synced: that write, plus any write already in flight.
  const changedAt = new Map<string, number[]>();
  stack.tc.ctx.bus.on('device.state', ({ id }) => {
    const times = changedAt.get(id) ?? [];
    changedAt.set(id, times);
    if (times.length < 10_000) times.push(performance.now());
  });
  const publish = broker.publish.bind(broker);
  broker.publish = (topic, payload, options) => {
    const levels = topic.split('/');
    const since = levels.length === 2 ? changedAt.get(levels[1]!)?.shift() : undefined;
    if (since !== undefined) stages.record('state to publish (journal)', performance.now() - since);
    return stages.time('broker publish', publish(topic, payload, options));
  };
  const invoke = frontDoor.invoke.bind(frontDoor);
  frontDoor.invoke = ((name: string, input: unknown, call: never) => stages.time('operation', invoke(name, input, call))) as typeof frontDoor.invoke;
  // Each serial-line command's call and return (CLOCK_MONOTONIC, us), per device and in order: with the
  // simulator's own times (PtyLinks.times) they split the driver's round trip into out, far end, back.
  const exchanges = new Map<string, Exchanges>();
  const micros = () => Number(process.hrtime.bigint() / 1000n);
  const loadDriver = async (name: string) => {
    const factory = await loadBuiltinDriver(name);
    return (ctx: Parameters<typeof factory>[0]) => {
      const driver = factory(ctx);
      const execute = driver.execute.bind(driver);
      const id = ctx.definition.id;
      const mine: Exchanges = { first: 0, label: [], start: [], end: [] };
      if (name === 'serial-line') exchanges.set(id, mine);
      driver.execute = (command, timeoutMs) => {
        const start = name === 'serial-line' ? micros() : 0;
        const work = stages.time('driver execute', execute(command, timeoutMs));
        if (name !== 'serial-line') return work;
        const label = stages.label;
        const done = (ok: boolean) => {
          if (mine.start.length >= 200_000) return;
          mine.label.push(label);
          mine.start.push(start);
          mine.end.push(ok ? micros() : Number.NaN);
        };
        work.then(
          () => done(true),
          () => done(false),
        );
        return work;
      };
      return driver;
    };
  };
  await stack.add(new DeviceService({ messaging: broker, api: stack.api, loadDriver }));
  // Event-loop delay of the runtime process, per run: tells a stall of the runtime from a slow device.
  const { monitorEventLoopDelay } = await import('node:perf_hooks');
  const loop = monitorEventLoopDelay({ resolution: 1 });
  let cpuAtReset = process.cpuUsage();
  const usedMs = (cpu: NodeJS.CpuUsage) => (cpu.user + cpu.system) / 1000;
  // CPU time per driver: the drivers take turns, so the time between two label switches is one driver's
  // (its commands, their answers, and the runtime's idle work meanwhile). Load on other processes does
  // not move it much, unlike latency.
  const cpuByLabel = new Map<string, number>();
  /** The kernel's part of it (system time): syscalls, and waking other threads and processes. */
  const systemByLabel = new Map<string, number>();
  let cpuMark = process.cpuUsage();
  const chargeCpu = () => {
    const used = process.cpuUsage(cpuMark);
    cpuByLabel.set(stages.label, (cpuByLabel.get(stages.label) ?? 0) + usedMs(used));
    systemByLabel.set(stages.label, (systemByLabel.get(stages.label) ?? 0) + used.system / 1000);
    cpuMark = process.cpuUsage();
  };
  loop.enable();
  process.on('message', (message: { cmd?: string; label?: string }) => {
    if (message.cmd === 'label') {
      chargeCpu();
      stages.label = String(message.label);
    }
    if (message.cmd === 'reset') {
      cpuAtReset = process.cpuUsage();
      cpuMark = cpuAtReset;
      cpuByLabel.clear();
      systemByLabel.clear();
      loop.reset();
      stages.reset();
      for (const mine of exchanges.values()) {
        mine.first += mine.start.length;
        mine.label = [];
        mine.start = [];
        mine.end = [];
      }
    }
    if (message.cmd === 'report') {
      chargeCpu();
      const ms = (ns: number) => Math.round(ns / 1e4) / 100;
      process.send?.({
        loop_p50_ms: ms(loop.percentile(50)),
        loop_p99_ms: ms(loop.percentile(99)),
        loop_max_ms: ms(loop.max),
        cpu_ms: Math.round(usedMs(process.cpuUsage(cpuAtReset))),
        cpu_ms_by_driver: Object.fromEntries(cpuByLabel),
        system_cpu_ms_by_driver: Object.fromEntries(systemByLabel),
        stages: stages.report(),
        exchanges: Object.fromEntries(exchanges),
      });
    }
  });
  process.stdout.write(`ready ${broker.port}\n`);
  process.on('SIGTERM', async () => {
    await stack.close();
    process.exit(0);
  });
}

// ---- the load generator -------------------------------------------------------------------------------

interface RunResult {
  /** Which checkout's runtime (with BENCH_COMPARE only). */
  runtime?: string;
  driver: string;
  rate: number;
  seconds: number;
  sent: number;
  answered: number;
  errors: number;
  /** Answers on the error topic, by error code. */
  error_codes: Record<string, number>;
  lost: number;
  achieved_rate: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  /** The runtime process's event-loop delay during the run, and the machine's load (other jobs included). */
  runtime_loop_p99_ms?: number;
  runtime_loop_max_ms?: number;
  load_avg_1m?: number;
  /** CPU time of the runtime process per command at this rate (user + system, every driver's turns together). */
  runtime_cpu_us_per_command?: number;
  /** The same for this driver's turns alone: the runtime's work per command on this path. */
  runtime_cpu_us_per_command_driver?: number;
  /** Its system (kernel) part. */
  runtime_system_cpu_us_per_command_driver?: number;
  /** Inside the runtime: the whole operation, the driver's part, the journal's group commits, the broker's publishes. */
  stages?: Record<string, { n: number; p50_ms: number; p99_ms: number }>;
  /** The serial driver's round trip in three parts (BENCH_LINK=pty only): see linkParts. */
  link?: LinkParts;
}

/** The driver label of the set whose far end is line-device-sim.c. */
const NATIVE_DRIVER = 'serial-line native far end';

/** The native far end built into `dir`; null (and a note) where no C compiler works. */
function buildNativeSimulator(dir: string): string | null {
  const built = buildNativeLineSimulator(dir);
  if ('binary' in built) return built.binary;
  log(`no native far end (cc: ${built.error}); BENCH_NATIVE_FAR_END=0 skips the attempt`);
  return null;
}

function errorCode(payload: Buffer): string {
  try {
    return String((JSON.parse(payload.toString()) as { code?: unknown }).code ?? 'NO_CODE');
  } catch {
    return 'UNREADABLE';
  }
}

/** What one slice of load gave: latencies of the answered commands, errors by code, what never came. */
interface Slice {
  sent: number;
  seconds: number;
  latencies: number[];
  errorCodes: Record<string, number>;
  lost: number;
}

/** Sends `rate` commands/s for `seconds`, round-robin over `ids`, on a fixed schedule (open loop). */
async function runSlice(client: MqttClient, ids: string[], rate: number, seconds: number): Promise<Slice> {
  const waiting = new Map<string, number[]>(ids.map((id) => [id, []]));
  const latencies: number[] = [];
  const errorCodes: Record<string, number> = {};
  const onMessage = (topic: string, payload: Buffer) => {
    const [, id, kind] = topic.split('/');
    const queue = id ? waiting.get(id) : undefined;
    if (!queue || (kind !== undefined && kind !== 'error')) return;
    const sentAt = queue.shift();
    if (sentAt === undefined) return;
    if (kind === 'error') {
      const code = errorCode(payload);
      errorCodes[code] = (errorCodes[code] ?? 0) + 1;
    } else latencies.push(performance.now() - sentAt);
  };
  client.on('message', onMessage);
  const total = Math.round(rate * seconds);
  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
    while (sent < due) {
      const id = ids[sent % ids.length]!;
      waiting.get(id)!.push(performance.now());
      client.publish(`clawbox/${id}/set`, `{"brightness":${sent % 101}}`, { qos: 0 });
      sent++;
    }
    await sleep(1);
  }
  const elapsed = (performance.now() - start) / 1000;
  // Let the last answers arrive; what is still missing after 3 s is lost.
  const until = Date.now() + 3000;
  while ([...waiting.values()].some((q) => q.length > 0) && Date.now() < until) await sleep(10);
  client.off('message', onMessage);
  const lost = [...waiting.values()].reduce((n, q) => n + q.length, 0);
  return { sent, seconds: elapsed, latencies, errorCodes, lost };
}

/** One driver's slices at one rate, summarised. */
function summarise(driver: string, rate: number, slices: Slice[]): RunResult {
  const latencies = slices.flatMap((s) => s.latencies).sort((a, b) => a - b);
  const errorCodes: Record<string, number> = {};
  for (const slice of slices) for (const [code, n] of Object.entries(slice.errorCodes)) errorCodes[code] = (errorCodes[code] ?? 0) + n;
  const sent = slices.reduce((n, s) => n + s.sent, 0);
  const seconds = slices.reduce((n, s) => n + s.seconds, 0);
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    driver,
    rate,
    seconds: round(seconds),
    sent,
    answered: latencies.length,
    errors: Object.values(errorCodes).reduce((a, b) => a + b, 0),
    error_codes: errorCodes,
    lost: slices.reduce((n, s) => n + s.lost, 0),
    achieved_rate: Math.round(sent / seconds),
    p50_ms: round(percentile(latencies, 50)),
    p99_ms: round(percentile(latencies, 99)),
    max_ms: round(latencies.at(-1) ?? Number.NaN),
  };
}

/** One runtime under test: a checkout's runtime side, its devices' links and the client that drives it. */
interface Side {
  /** How results name it: the checkout's commit (or BENCH_COMPARE_LABEL), "" without a comparison. */
  tag: string;
  tree: string;
  run: NodeRun;
  child: ChildProcess;
  client: MqttClient;
  report(): Promise<Record<string, unknown>>;
}

/** The commit a checkout is at ("+" when it has changes), or null without git. */
function commitOf(tree: string): string | null {
  const git = spawnSync('git', ['-C', tree, 'describe', '--always', '--dirty=+'], { encoding: 'utf8' });
  return git.status === 0 ? git.stdout.trim() : null;
}

/** Starts `tree`'s runtime side (bench/commands.ts --serve) on `config` and connects a client to it. */
async function startSide(tag: string, tree: string, run: NodeRun, config: object, dir: string): Promise<Side> {
  const configFile = path.join(dir, `bench-config${tag ? `-${tag.replace(/\W/g, '_')}` : ''}.json`);
  writeFileSync(configFile, JSON.stringify(config));
  // BENCH_CPU_PROF=<dir>: a V8 CPU profile of the runtime side (open it in Chrome DevTools).
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(process.env.BENCH_CPU_PROF)] : [];
  const child = spawn(process.execPath, [...run.flags, ...profile, '--import', 'tsx', path.join(tree, 'bench', 'commands.ts'), '--serve', configFile], {
    cwd: tree,
    env: { ...process.env, ...run.env },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      const match = /ready (\d+)/.exec(chunk.toString());
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`runtime of ${tree} exited with ${code}`)));
  });
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 });
  (client.stream as unknown as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  await client.subscribeAsync(['clawbox/+', 'clawbox/+/error']);
  const report = () =>
    new Promise<Record<string, unknown>>((resolve) => {
      child.once('message', (m) => resolve(m as Record<string, unknown>));
      child.send({ cmd: 'report' });
    });
  return { tag, tree, run, child, client, report };
}

async function stopSide(side: Side): Promise<void> {
  await side.client.endAsync().catch(() => {});
  if (side.child.exitCode !== null) return;
  const exited = new Promise((r) => side.child.once('exit', r));
  side.child.kill('SIGTERM');
  await Promise.race([exited, sleep(5000)]);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clawbox-bench-commands-'));
  const serialIds = Array.from({ length: DEVICES }, (_, i) => `serial-${i}`);
  const pipelinedIds = Array.from({ length: PIPELINE > 1 ? DEVICES : 0 }, (_, i) => `pipelined-${i}`);
  const simIds = Array.from({ length: DEVICES }, (_, i) => `sim-${i}`);
  const nativeSim = NATIVE_FAR_END && LINK === 'pty' ? buildNativeSimulator(dir) : null;
  const nativeIds = Array.from({ length: nativeSim ? DEVICES : 0 }, (_, i) => `native-${i}`);
  // BENCH_COMPARE=<another checkout>: its runtime runs beside this one, on devices of its own, and the
  // two take turns slice by slice, so a before/after comparison sees the same machine load.
  const compare = process.env.BENCH_COMPARE ? path.resolve(process.env.BENCH_COMPARE) : null;
  const mine = nodeRun(process.env.BENCH_RUNTIME_FLAGS, ROOT);
  const trees = compare
    ? [
        { tag: commitOf(ROOT) ?? 'this', tree: ROOT, run: mine },
        {
          tag: process.env.BENCH_COMPARE_LABEL ?? commitOf(compare) ?? path.basename(compare),
          tree: compare,
          run: nodeRun(process.env.BENCH_COMPARE_FLAGS ?? process.env.BENCH_RUNTIME_FLAGS, compare),
        },
      ]
    : [{ tag: '', tree: ROOT, run: mine }];
  // The same checkout under other flags: the flags tell the two apart.
  if (trees.length > 1 && trees[0]!.tag === trees[1]!.tag && process.env.BENCH_COMPARE_FLAGS) {
    const short = (run: NodeRun) =>
      run.label === 'plain node' ? 'plain' : run.label.startsWith('installed') ? 'installed' : run.label.length > 32 ? `${run.label.slice(0, 31)}…` : run.label;
    for (const tree of trees) tree.tag += ` [${short(tree.run)}]`;
  }
  if (trees.length > 1 && trees[0]!.tag === trees[1]!.tag) trees[1]!.tag += ' (compared)';
  // Each runtime's serial devices get links of their own (the ids repeat: each runtime is its own broker).
  const linkName = (side: number, id: string) => (side === 0 ? id : `b-${id}`);
  const linkNames = trees.flatMap((_, side) => [...serialIds, ...pipelinedIds].map((id) => linkName(side, id)));
  const nativeLinkNames = trees.flatMap((_, side) => nativeIds.map((id) => linkName(side, id)));
  const rigs = LINK === 'socat' ? linkNames.map((name) => new SerialRig(dir, name, LINE_SIM)) : [];
  const links = LINK === 'pty' ? new PtyLinks(dir, linkNames, LINE_SIM) : null;
  const nativeLinks = nativeSim ? new PtyLinks(dir, nativeLinkNames, nativeSim) : null;
  /** Each far-end process, for its timing and CPU: the Node simulator, and the native one. */
  const farEnds = [
    ...(links ? [{ name: 'node', links }] : []),
    ...(nativeLinks ? [{ name: 'native', links: nativeLinks }] : []),
  ];
  const devicePath = (name: string) => (nativeLinkNames.includes(name) ? nativeLinks!.path(name) : (links?.path(name) ?? rigs.find((rig) => rig.name === name)!.devicePath));
  const sides: Side[] = [];
  try {
    log(`attaching ${linkNames.length} serial devices: ${HARNESS}...`);
    await Promise.all(rigs.map((rig) => rig.plug()));
    await links?.start();
    await nativeLinks?.start();
    for (const [index, { tag, tree, run }] of trees.entries()) {
      const config = {
        devices: [
          ...serialIds.map((id) => serialEntry(id, devicePath(linkName(index, id)))),
          ...pipelinedIds.map((id) => serialEntry(id, devicePath(linkName(index, id)), { pipeline: PIPELINE })),
          ...nativeIds.map((id) => serialEntry(id, devicePath(linkName(index, id)))),
          ...simIds.map((id) => ({ id, driver: 'simulated', capabilities: ['switch', 'dimmer'] })),
        ],
      };
      log(`starting the runtime${tag ? ` of ${tag}` : ''} (${tree}), node: ${run.label}...`);
      sides.push(await startSide(tag, tree, run, config, dir));
    }
    await sleep(500); // retained states arrive on subscribe; they are not answers
    log('warm-up...');
    for (const side of sides) {
      await runSlice(side.client, serialIds, 100, 2);
      if (pipelinedIds.length > 0) await runSlice(side.client, pipelinedIds, 100, 2);
      if (nativeIds.length > 0) await runSlice(side.client, nativeIds, 100, 2);
      await runSlice(side.client, simIds, 100, 2);
    }

    // The drivers (and runtimes) take turns in slices of SLICE_SECONDS (which goes first rotates), so all
    // see the same machine: other jobs' load moves the baseline and the serial figures alike.
    const drivers: Array<readonly [string, string[]]> = [
      ['simulated', simIds],
      ['serial-line', serialIds],
      ...(pipelinedIds.length > 0 ? [[`serial-line pipeline ${PIPELINE}`, pipelinedIds] as const] : []),
      ...(nativeIds.length > 0 ? [[NATIVE_DRIVER, nativeIds] as const] : []),
    ];
    const turnsOf = sides.flatMap((side) => drivers.map(([driver, ids]) => ({ side, driver, ids })));
    const results: RunResult[] = [];
    /** Each far-end process's CPU per serial command it answered (every runtime), per rate. */
    const simulatorCpu: Array<{ far_end: string; rate: number; us_per_serial_command: number }> = [];
    for (const rate of RATES) {
      log(`${rate} cmd/s: ${SECONDS} s per driver${sides.length > 1 ? ' and runtime' : ''} in ${SLICE_SECONDS} s turns...`);
      for (const side of sides) side.child.send({ cmd: 'reset' });
      const farCpuBefore = await Promise.all(farEnds.map(async (far) => (await far.links.times()).cpuMicros));
      const before = os.loadavg()[0]!;
      const slices = new Map<string, Slice[]>(turnsOf.map(({ side, driver }) => [`${side.tag}|${driver}`, []]));
      const turns = Math.max(1, Math.round(SECONDS / SLICE_SECONDS));
      for (let turn = 0; turn < turns; turn++) {
        const order = [...turnsOf.slice(turn % turnsOf.length), ...turnsOf.slice(0, turn % turnsOf.length)];
        for (const { side, driver, ids } of order) {
          side.child.send({ cmd: 'label', label: driver });
          slices.get(`${side.tag}|${driver}`)!.push(await runSlice(side.client, [...ids], rate, SLICE_SECONDS));
          side.child.send({ cmd: 'label', label: 'idle' });
        }
      }
      const load = Math.round(((before + os.loadavg()[0]!) / 2) * 10) / 10;
      const simTimes = new Map<string, number[]>();
      for (const [i, far] of farEnds.entries()) {
        const sim = await far.links.times();
        for (const [name, times] of sim.times) simTimes.set(name, times);
        // The far end is harness: a real device does not share the runtime's cores. What it takes from them:
        const served = [...slices].filter(([key]) => (key.split('|')[1] === NATIVE_DRIVER) === (far.name === 'native') && key.split('|')[1]!.startsWith('serial-line'));
        const commands = served.reduce((n, [, list]) => n + list.reduce((m, x) => m + x.sent, 0), 0);
        const cpuMs = (sim.cpuMicros - farCpuBefore[i]!) / 1000;
        simulatorCpu.push({ far_end: far.name, rate, us_per_serial_command: Math.round((cpuMs * 1000) / commands) });
        log(`${rate} cmd/s: the ${far.name} far end used ${Math.round(cpuMs)} ms of CPU for ${commands} serial commands`);
      }
      for (const [sideIndex, side] of sides.entries()) {
        const { loop_p99_ms, loop_max_ms, cpu_ms, cpu_ms_by_driver, system_cpu_ms_by_driver, stages, exchanges } = (await side.report()) as {
          loop_p99_ms: number;
          loop_max_ms: number;
          cpu_ms: number;
          cpu_ms_by_driver: Record<string, number>;
          /** Absent from a compared checkout whose bench predates it. */
          system_cpu_ms_by_driver?: Record<string, number>;
          stages: Record<string, RunResult['stages']>;
          /** Absent from a compared checkout whose bench predates it. */
          exchanges?: Record<string, Exchanges>;
        };
        const link = farEnds.length > 0 && exchanges ? linkParts(exchanges, simTimes, (id) => linkName(sideIndex, id)) : {};
        const commands = drivers.reduce((n, [driver]) => n + slices.get(`${side.tag}|${driver}`)!.reduce((m, slice) => m + slice.sent, 0), 0);
        log(`${rate} cmd/s${side.tag ? ` (${side.tag})` : ''}: the runtime process used ${cpu_ms} ms of CPU for ${commands} commands (${Math.round((cpu_ms / commands) * 1000)} us each, all drivers, idle turns included)`);
        for (const [driver] of drivers) {
          const summary = summarise(driver, rate, slices.get(`${side.tag}|${driver}`)!);
          results.push({
            ...(side.tag ? { runtime: side.tag } : {}),
            ...summary,
            runtime_cpu_us_per_command_driver: Math.round(((cpu_ms_by_driver[driver] ?? 0) / summary.sent) * 1000),
            ...(system_cpu_ms_by_driver
              ? { runtime_system_cpu_us_per_command_driver: Math.round(((system_cpu_ms_by_driver[driver] ?? 0) / summary.sent) * 1000) }
              : {}),
            runtime_loop_p99_ms: loop_p99_ms,
            runtime_loop_max_ms: loop_max_ms,
            load_avg_1m: load,
            runtime_cpu_us_per_command: Math.round((cpu_ms / commands) * 1000),
            ...(stages[driver] ? { stages: stages[driver] } : {}),
            ...(link[driver] ? { link: link[driver] } : {}),
          });
        }
      }
    }

    const header = ['runtime', 'driver', 'rate/s', 'achieved', 'sent', 'answered', 'errors', 'lost', 'p50 ms', 'p99 ms', 'max ms', 'cpu us/cmd', 'of it sys', 'loop p99', 'loop max', 'load'];
    const shown = sides.length > 1 ? header : header.slice(1);
    const rows = results.map((r) =>
      [r.runtime ?? '', r.driver, r.rate, r.achieved_rate, r.sent, r.answered, r.errors, r.lost, r.p50_ms, r.p99_ms, r.max_ms, r.runtime_cpu_us_per_command_driver, r.runtime_system_cpu_us_per_command_driver ?? '', r.runtime_loop_p99_ms, r.runtime_loop_max_ms, r.load_avg_1m]
        .map(String)
        .slice(sides.length > 1 ? 0 : 1),
    );
    const widths = shown.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
    console.log(`\ncommand -> state published latency, ${DEVICES} devices per driver, open loop, ${SECONDS} s per rate`);
    console.log(`(serial devices: ${HARNESS}; simulated: in the runtime, no I/O)`);
    for (const side of sides) console.log(`(runtime${side.tag ? ` ${side.tag}` : ''}: node ${side.run.label})`);
    console.log('(cpu us/cmd: CPU time of the runtime process per command during this driver\'s turns, of it sys: the kernel\'s');
    console.log(' part (syscalls, waking other threads and processes); loop p99/max: its');
    console.log(' event-loop delay in ms; load: 1-minute load average, all jobs)');
    console.log(line(shown));
    for (const row of rows) console.log(line(row));
    const named = (r: RunResult) => `${r.runtime ? `${r.runtime}: ` : ''}${r.driver}`;
    for (const r of results) {
      const codes = Object.entries(r.error_codes).map(([code, n]) => `${code} ${n}`);
      if (codes.length > 0) console.log(`errors, ${named(r)} at ${r.rate}/s: ${codes.join(', ')}`);
    }
    console.log('\ninside the runtime, p50 / p99 ms (n):');
    for (const r of results) {
      const parts = Object.entries(r.stages ?? {}).map(([stage, t]) => `${stage} ${t.p50_ms} / ${t.p99_ms} (${t.n})`);
      console.log(`  ${named(r)} at ${r.rate}/s: ${parts.join('; ')}`);
    }
    const linked = results.filter((r) => r.link);
    if (linked.length > 0) {
      console.log('\nthe serial round trip in parts, p50 / p99 ms (n): out = driver called -> simulator read the line (the');
      console.log('runtime\'s write, the ptys, the simulator waking); far end = its turn (harness); back = reply written -> driver returned:');
      for (const r of linked) {
        const { n, out, far_end, back } = r.link!;
        console.log(`  ${named(r)} at ${r.rate}/s: out ${out.p50_ms} / ${out.p99_ms}; far end ${far_end.p50_ms} / ${far_end.p99_ms}; back ${back.p50_ms} / ${back.p99_ms} (${n})`);
      }
      for (const { far_end, rate, us_per_serial_command } of simulatorCpu) console.log(`  the ${far_end} far end's CPU at ${rate}/s: ${us_per_serial_command} us per serial command it answered`);
    }
    console.log('');
    const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 100) / 100 : Number.NaN);
    const goals: Record<string, unknown>[] = [];
    for (const side of sides) {
      const mine = results.filter((r) => (r.runtime ?? '') === side.tag);
      for (const rate of RATES) {
        const simulated = mine.find((r) => r.driver === 'simulated' && r.rate === rate);
        for (const serial of mine.filter((r) => r.driver.startsWith('serial-line') && r.rate === rate)) {
          if (!simulated) continue;
          console.log(
            `${rate} cmd/s: ${named(serial)} / simulated p50 ${ratio(serial.p50_ms, simulated.p50_ms)}x, p99 ${ratio(serial.p99_ms, simulated.p99_ms)}x` +
              ` (goal <= 1.5x); errors + lost ${serial.errors + serial.lost}`,
          );
        }
      }
      // Issue 17's goals for the serial path, as this run measured them (p99 <= 5 ms needs a quiet box).
      const at = (driver: string, rate: number) => mine.find((r) => r.driver === driver && r.rate === rate);
      const serial500 = at('serial-line', 500);
      const simulated500 = at('simulated', 500);
      const serial1000 = at('serial-line', 1000);
      const goal = {
        ...(side.tag ? { runtime: side.tag } : {}),
        serial_p99_ms_at_500: serial500?.p99_ms ?? null,
        p99_at_most_5_ms: serial500 ? serial500.p99_ms <= 5 : null,
        serial_over_simulated_p99_at_500: serial500 && simulated500 ? ratio(serial500.p99_ms, simulated500.p99_ms) : null,
        at_most_1_5x: serial500 && simulated500 ? serial500.p99_ms <= 1.5 * simulated500.p99_ms : null,
        timeouts_at_1000: serial1000 ? (serial1000.error_codes.DEVICE_TIMEOUT ?? 0) + serial1000.lost : null,
        // The same path with the native far end (harness CPU off the cores): beside the goal, not instead of it.
        native_far_end_p99_ms_at_500: at(NATIVE_DRIVER, 500)?.p99_ms ?? null,
        native_far_end_over_simulated_p99_at_500: at(NATIVE_DRIVER, 500) && simulated500 ? ratio(at(NATIVE_DRIVER, 500)!.p99_ms, simulated500.p99_ms) : null,
      };
      goals.push(goal);
      const verdict = (met: boolean | null) => (met === null ? 'not measured' : met ? 'met' : 'NOT met');
      console.log(
        `goals${side.tag ? ` (${side.tag})` : ''}: serial-line p99 at 500 cmd/s ${goal.serial_p99_ms_at_500} ms <= 5 ms: ${verdict(goal.p99_at_most_5_ms)};` +
          ` ${goal.serial_over_simulated_p99_at_500}x simulated <= 1.5x: ${verdict(goal.at_most_1_5x)};` +
          ` timeouts + lost at 1,000 cmd/s: ${goal.timeouts_at_1000 ?? 'not measured'}` +
          ` (load average ${results.find((r) => r.rate === 500)?.load_avg_1m ?? '?'}; the p99 goal is for a quiet box)`,
      );
      if (goal.native_far_end_p99_ms_at_500 !== null) {
        console.log(
          `  beside it, ${NATIVE_DRIVER} (the harness's far end in C): p99 at 500 cmd/s ${goal.native_far_end_p99_ms_at_500} ms,` +
            ` ${goal.native_far_end_over_simulated_p99_at_500}x simulated`,
        );
      }
    }
    if (sides.length > 1) {
      console.log(`\n${sides[0]!.tag} against ${sides[1]!.tag} (same run, alternating slices), p50 / p99 ms:`);
      for (const rate of RATES) {
        for (const [driver] of drivers) {
          const a = results.find((r) => r.runtime === sides[0]!.tag && r.driver === driver && r.rate === rate);
          const b = results.find((r) => r.runtime === sides[1]!.tag && r.driver === driver && r.rate === rate);
          if (!a || !b) continue;
          console.log(
            `  ${driver} at ${rate}/s: ${a.p50_ms} / ${a.p99_ms} against ${b.p50_ms} / ${b.p99_ms} (p99 ${ratio(a.p99_ms, b.p99_ms)}x;` +
              ` cpu us/cmd ${a.runtime_cpu_us_per_command_driver} against ${b.runtime_cpu_us_per_command_driver})`,
          );
        }
      }
    }

    const out = path.join(ROOT, 'bench', 'results');
    mkdirSync(out, { recursive: true });
    const file = path.join(out, `commands-${new Date().toISOString().replaceAll(':', '-').replace('.', '-')}.json`);
    const machine = { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memory_gb: Math.round(os.totalmem() / 2 ** 30), node: process.version };
    const runtimes = sides.map((side) => ({ tag: side.tag || commitOf(side.tree), tree: side.tree, node: side.run.label, node_env: side.run.env, node_flags: side.run.flags }));
    writeFileSync(file, `${JSON.stringify({ benchmark: 'commands', machine, runtimes, harness: HARNESS, devices: DEVICES, seconds: SECONDS, goals, simulator_cpu: simulatorCpu, results }, null, 2)}\n`);
    console.log(`results: ${path.relative(ROOT, file)}`);
  } finally {
    await Promise.all(sides.map(stopSide));
    await Promise.all(rigs.map((rig) => rig.unplug()));
    await links?.stop();
    await nativeLinks?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--serve') {
  await serve(process.argv[3]!);
} else {
  await main();
}
