/**
 * npm run bench:overload — does the scheduler hold the 200 ms deadline at any offered load?
 *
 * Model: a generated llama GGUF with the shape of a ~0.5B model (n_embd 896, 24 layers, 14/2 heads, ffn
 * 4864, 32k vocab), Q4_0, random weights (same compute as a real model of that shape; its text is
 * gibberish), into a temp dir (BENCH_MODEL_DIR reuses one). A smaller generated model (8 layers, n_embd
 * 512) is the `small` rung. Nothing is downloaded or committed.
 *
 * Requests: 70 % device commands ("turn on the kitchen lamp" and friends) that the agent's intent
 * matcher answers (fast path, simulated devices), 30 % requests that need the model: a cached ~150-token
 * system prefix, a ~10-token user text, and a 6-token answer (a tool call after jump-forward decoding;
 * 3 tokens on the short rung). Model requests call the engine directly, the same work for both systems.
 *
 * Systems, same engine, alternating in one run:
 *   clawbox — the Scheduler: fast path first, admission from learned service times, degrade ladder
 *             (short output, small model), BUSY with retry_after_ms, adaptive LIFO + CoDel, deadline aborts.
 *   fifo    — one FIFO queue (at most 512 waiting, then 503 like Ollama) in front of the agent and the
 *             engine, the same number of parallel sequences, no deadlines, no shedding.
 *
 * Capacity = the highest Poisson request rate at which the FIFO system's p99 stays <= the deadline
 * (geometric bisection; each probe long enough for ~20 model requests, at most 30 s). Then open-loop Poisson load at 0.5x, 1x, 2x, 4x capacity, each level run for both
 * systems on the same arrival sequence. Latency counts from the intended arrival time. Requests the FIFO
 * still holds 2 s after a level ends are cut (counted as misses) so the run stays bounded.
 *
 * Remote rung (BENCH_BRAIN=0 leaves it out): a third system, clawbox+brain, is the same scheduler with a
 * remote lane: a brain in ANOTHER PROCESS ON THIS MACHINE (bench/brain-child.ts, the brain's gRPC service
 * over mutual TLS 1.3 on loopback) serving the same 0.5B-shape model with BENCH_BRAIN_SEQUENCES (2)
 * sequences. It shares this machine's cores, so it shows what the rung does to goodput and p99, not
 * what a separate, bigger brain would add.
 *
 * Usage: npm run bench:overload [-- --quick]   (--quick: ~1-2 minute smoke run with 4 s levels)
 * Env: BENCH_LEVEL_S (30), BENCH_CAPACITY_S (8), BENCH_CAPACITY_STEPS (6), BENCH_DEADLINE_MS (200),
 *      BENCH_MODEL_DIR (reuse generated models), BENCH_SEQUENCES (4).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LlamaLogLevel, getLlama } from 'node-llama-cpp';
import pino from 'pino';
import { Agent, type AgentResponse } from '../agent/agent.js';
import { withModelDefaults } from '../models/config-schema.js';
import { ModelEngine } from '../models/engine/engine.js';
import { type ModelShape, generateModel } from '../models/gguf/generate.js';
import { SimDirectory } from '../agent/testing/sim-directory.js';
import { isClawboxError } from '../runtime/errors.js';
import { ModelLane } from '../agent/scheduler/model-lane.js';
import { Scheduler } from '../agent/scheduler/scheduler.js';
import { percentile } from '../agent/scheduler/stats.js';
import { seededRandom } from '../runtime/seeded-random.js';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { GrpcBrainLink } from '../brain/client.js';
import { createLinkCertificates } from '../brain/certs.js';
import { systemClock } from '../agent/scheduler/clock.js';
import type { Lane } from '../agent/scheduler/scheduler.js';
import { EwmaServiceModel, type WorkPlan } from '../agent/scheduler/service-model.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const QUICK = process.argv.includes('--quick');
const LEVEL_S = Number(process.env.BENCH_LEVEL_S ?? (QUICK ? 4 : 30));
const CAPACITY_S = Number(process.env.BENCH_CAPACITY_S ?? (QUICK ? 4 : 8));
const CAPACITY_STEPS = Number(process.env.BENCH_CAPACITY_STEPS ?? (QUICK ? 3 : 6));
const DEADLINE_MS = Number(process.env.BENCH_DEADLINE_MS ?? 200);
const SEQUENCES = Number(process.env.BENCH_SEQUENCES ?? 4);
const LEVELS = [0.5, 1, 2, 4];
const FAST_SHARE = 0.7;
const OUTPUT_TOKENS = 6;
const SHORT_TOKENS = 3;
const FIFO_MAX_QUEUE = 512;
const CUT_GRACE_MS = 2000;
const quiet = pino({ level: 'silent' });
const BRAIN = process.env.BENCH_BRAIN !== '0';
const BRAIN_SEQUENCES = Number(process.env.BENCH_BRAIN_SEQUENCES ?? 2);

const SMALL_SHAPE: ModelShape = { n_vocab: 32000, n_embd: 512, n_layer: 8, n_head: 8, n_head_kv: 2, n_ff: 1536, context_length: 4096 };

const log = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---- workload -------------------------------------------------------------------------------------

const WORDS = 'the kitchen lamp living room turn on off set light hall bed warm cosy music evening morning please dark bright quiet window garden door'.split(' ');
const COMMANDS = ['turn on the kitchen lamp', 'turn off the kitchen lamp', 'turn on the hall light', 'turn off the hall light', 'dim the kitchen lamp to 30%', 'open the garage door', 'what is the living room temperature'];


function words(n: number, random: () => number): string {
  return Array.from({ length: n }, () => WORDS[Math.floor(random() * WORDS.length)]!).join(' ');
}

const PREFIX = `You control a home. Devices: ${words(110, seededRandom(99))}. Answer with one tool call.`;

interface BenchRequest {
  kind: 'fast' | 'model';
  text: string;
  /** Model requests: the user part of the prompt. */
  prompt: string;
  /** Offset of the intended arrival from the start of the run (ms). */
  at: number;
}

function arrivals(rate: number, seconds: number, seed: number): BenchRequest[] {
  const random = seededRandom(seed);
  const out: BenchRequest[] = [];
  let t = 0;
  for (;;) {
    t += (-Math.log(1 - random()) / rate) * 1000;
    if (t >= seconds * 1000) break;
    if (random() < FAST_SHARE) {
      const text = COMMANDS[Math.floor(random() * COMMANDS.length)]!;
      out.push({ kind: 'fast', text, prompt: '', at: t });
    } else {
      const prompt = `User: ${words(7, random)}\nAssistant:`;
      out.push({ kind: 'model', text: `please ${prompt}`, prompt, at: t });
    }
  }
  return out;
}

// ---- results --------------------------------------------------------------------------------------

type Status = 'ok' | 'busy' | 'deadline' | 'cut' | 'error';

interface Record_ {
  kind: 'fast' | 'model';
  status: Status;
  latency_ms: number;
  rung: string;
  retry_after_ms?: number;
  error?: string;
}

interface LevelFigures {
  system: SystemName;
  level: number;
  offered_rps: number;
  seconds: number;
  requests: number;
  answered: number;
  p50_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
  model_p99_ms: number | null;
  fast_p99_ms: number | null;
  goodput_rps: number;
  goodput_of_capacity: number | null;
  shed_pct: number;
  degraded_pct: Record<string, number>;
  deadline_misses: number;
  cut: number;
  errors: number;
  retry_after_ms_p50: number | null;
}

function figures(system: SystemName, level: number, rate: number, seconds: number, records: Record_[], capacity: number | null): LevelFigures {
  const ok = records.filter((r) => r.status === 'ok');
  const lat = ok.map((r) => r.latency_ms).sort((a, b) => a - b);
  const of = (kind: 'fast' | 'model') => ok.filter((r) => r.kind === kind).map((r) => r.latency_ms).sort((a, b) => a - b);
  const good = ok.filter((r) => r.latency_ms <= DEADLINE_MS).length;
  const degraded: Record<string, number> = {};
  for (const r of ok) if (r.rung !== 'none') degraded[r.rung] = (degraded[r.rung] ?? 0) + 1;
  const pct = (n: number) => Math.round((n / Math.max(1, records.length)) * 1000) / 10;
  const round = (n: number | null) => (n === null ? null : Math.round(n * 10) / 10);
  const retries = records.filter((r) => r.retry_after_ms !== undefined).map((r) => r.retry_after_ms!).sort((a, b) => a - b);
  const goodput = good / seconds;
  return {
    system,
    level,
    offered_rps: Math.round(rate * 10) / 10,
    seconds,
    requests: records.length,
    answered: ok.length,
    p50_ms: round(percentile(lat, 50)),
    p99_ms: round(percentile(lat, 99)),
    max_ms: round(lat.at(-1) ?? null),
    model_p99_ms: round(percentile(of('model'), 99)),
    fast_p99_ms: round(percentile(of('fast'), 99)),
    goodput_rps: Math.round(goodput * 10) / 10,
    goodput_of_capacity: capacity ? Math.round((goodput / capacity) * 1000) / 1000 : null,
    shed_pct: pct(records.filter((r) => r.status === 'busy').length),
    degraded_pct: Object.fromEntries(Object.entries(degraded).map(([k, v]) => [k, pct(v)])),
    deadline_misses: records.filter((r) => r.status === 'deadline' || r.status === 'cut' || (r.status === 'ok' && r.latency_ms > DEADLINE_MS)).length,
    cut: records.filter((r) => r.status === 'cut').length,
    errors: records.filter((r) => r.status === 'error').length,
    retry_after_ms_p50: round(percentile(retries, 50)),
  };
}

// ---- the two systems ------------------------------------------------------------------------------

/** clawbox+brain: the same scheduler with the remote rung, a brain in another process on this machine. */
type SystemName = 'clawbox' | 'clawbox+brain' | 'fifo';

interface System {
  name: SystemName;
  /** Resolves with the record; `cut` aborts what is still outstanding. */
  submit(request: BenchRequest, cut: AbortSignal): Promise<Omit<Record_, 'latency_ms'>>;
}

/** A plain FIFO work queue with a fixed number of workers and a bounded backlog. */
class FifoQueue {
  #running = 0;
  readonly #waiting: Array<{ run: () => void; signal: AbortSignal; abort: () => void }> = [];
  constructor(
    public concurrency: number,
    readonly maxQueue: number,
  ) {}

  submit<T>(work: () => Promise<T>, signal: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const run = () => {
        this.#running++;
        work()
          .then(resolve, reject)
          .finally(() => {
            this.#running--;
            this.#next();
          });
      };
      if (this.#running < this.concurrency && this.#waiting.length === 0) return run();
      if (this.#waiting.length >= this.maxQueue) return reject(Object.assign(new Error('queue full'), { code: 'BUSY' }));
      const entry = {
        run,
        signal,
        abort: () => {
          const at = this.#waiting.indexOf(entry);
          if (at >= 0) this.#waiting.splice(at, 1);
          reject(Object.assign(new Error('cut'), { code: 'CUT' }));
        },
      };
      signal.addEventListener('abort', entry.abort, { once: true });
      this.#waiting.push(entry);
    });
  }

  #next(): void {
    while (this.#running < this.concurrency && this.#waiting.length > 0) {
      const entry = this.#waiting.shift()!;
      entry.signal.removeEventListener('abort', entry.abort);
      entry.run();
    }
  }
}

// ---- driver ---------------------------------------------------------------------------------------

async function drive(system: System, requests: BenchRequest[], seconds: number): Promise<Record_[]> {
  const cut = new AbortController();
  const start = performance.now() + 20;
  const pending: Array<Promise<Record_>> = [];
  let i = 0;
  while (i < requests.length) {
    const now = performance.now();
    while (i < requests.length && start + requests[i]!.at <= now) {
      const request = requests[i]!;
      const intended = start + request.at;
      pending.push(
        system.submit(request, cut.signal).then((record) => ({ ...record, latency_ms: performance.now() - intended }) as Record_),
      );
      i++;
    }
    if (i < requests.length) {
      const wait = start + requests[i]!.at - performance.now();
      await (wait > 1.5 ? sleep(wait - 1) : new Promise<void>((resolve) => setImmediate(resolve)));
    }
  }
  const end = start + seconds * 1000;
  const timer = setTimeout(() => cut.abort(), Math.max(0, end + CUT_GRACE_MS - performance.now()));
  const records = await Promise.all(pending);
  clearTimeout(timer);
  return records;
}

function classify(error: unknown): Omit<Record_, 'latency_ms' | 'kind'> {
  const code = (error as { code?: unknown })?.code;
  if (code === 'BUSY') {
    const retry = isClawboxError(error) ? (error.details.retry_after_ms as number | undefined) : undefined;
    return { status: 'busy', rung: 'none', ...(retry !== undefined ? { retry_after_ms: retry } : {}) };
  }
  if (code === 'DEADLINE_EXCEEDED') return { status: 'deadline', rung: 'none' };
  if (code === 'CUT') return { status: 'cut', rung: 'none' };
  return { status: 'error', rung: 'none', error: error instanceof Error ? error.message : String(error) };
}

// ---- the remote rung ------------------------------------------------------------------------------

type BenchResult = { text: string; generated: number } | AgentResponse;

/**
 * clawbox+brain: a second Scheduler over the same local lanes plus a remote lane on a brain process
 * (bench/brain-child.ts) reached over the real link. Calibrated like the local lanes before the levels.
 */
async function brainSystem(
  modelFile: string,
  _sequences: number,
  plan: (request: BenchRequest) => WorkPlan,
  agent: Agent,
  local: [Lane<BenchRequest, BenchResult>, Lane<BenchRequest, BenchResult>],
): Promise<{ system: System; stop(): Promise<void> }> {
  const certs = await mkdtemp(path.join(os.tmpdir(), 'clawbox-bench-brain-'));
  await createLinkCertificates({ dir: certs, days: 2 });
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'brain-child.ts'), modelFile, certs, String(BRAIN_SEQUENCES)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => line.startsWith('READY ') && resolve(Number(line.split(' ')[1])));
    child.once('exit', (code) => reject(new Error(`brain process exited with ${code}`)));
  });
  const link = new GrpcBrainLink({ target: `127.0.0.1:${port}`, tls: { ca: path.join(certs, 'ca.crt'), cert: path.join(certs, 'edge.crt'), key: path.join(certs, 'edge.key') } });
  await link.start();
  log(`brain: another process on this machine, port ${port}, link ${JSON.stringify({ protocol: link.status().protocol, cipher: link.status().cipher })}`);
  const remote: Lane<BenchRequest, BenchResult> = {
    model: new EwmaServiceModel({ clock: systemClock }),
    available: () => link.available(),
    maxSequences: () => link.sequences(),
    async run(job) {
      const reply = await link.generate(
        { prefix: PREFIX, prompt: job.request.prompt, max_tokens: job.grant.max_output_tokens, tool_schema: null, session: '', temperature: 0, stop: [] },
        { deadline: Date.now() + Math.max(0, job.deadline - performance.now()), signal: job.signal },
      );
      job.report.done({ evaluated_tokens: reply.usage.evaluated_tokens, prefill_ms: reply.usage.prefill_ms, generated_tokens: reply.usage.generated_tokens, decode_ms: reply.usage.decode_ms });
      return { text: reply.text, generated: reply.usage.generated_tokens };
    },
  };
  const scheduler = new Scheduler<BenchRequest, BenchResult>({
    config: { default_deadline_ms: DEADLINE_MS, max_concurrency: 'auto' },
    lanes: { main: local[0], small: local[1], remote },
    tryFastPath: async (request) => ((await agent.match(request.text)) ? () => agent.handle({ text: request.text }, { path: 'fast' }) : null),
    plan,
  });
  // The remote lane learns its service time (network included) from a few requests with long deadlines.
  const calib = arrivals(1, 1000, 11).filter((r) => r.kind === 'model');
  for (const deadline = Date.now() + 60_000; !link.available() && Date.now() < deadline; ) await sleep(200);
  for (let i = 0; i < 6; i++) {
    await scheduler.submit({ request: calib[i]!, deadline_ms: 60_000, route: 'remote_first' }).catch((error: unknown) => log(`brain calibration request failed: ${(error as Error).message}`));
  }
  log(`brain lane calibrated: ${JSON.stringify(remote.model.snapshot())}`);
  return {
    system: {
      name: 'clawbox+brain',
      submit: (request) =>
        scheduler.submit({ request, source: 'mqtt' }).then(
          (o) => ({ kind: request.kind, status: 'ok' as Status, rung: o.rung === 'none' ? 'none' : o.rung }),
          (error: unknown) => ({ kind: request.kind, ...classify(error) }),
        ),
    },
    async stop() {
      scheduler.stop();
      await link.stop();
      child.kill();
    },
  };
}

// ---- main -----------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const dir = process.env.BENCH_MODEL_DIR ?? (await mkdtemp(path.join(os.tmpdir(), 'clawbox-bench-overload-')));
  mkdirSync(dir, { recursive: true });
  const mainFile = path.join(dir, 'synthetic-0.5b-q4_0.gguf');
  const smallFile = path.join(dir, 'synthetic-small-q4_0.gguf');
  const generatedAt = performance.now();
  if (!existsSync(mainFile)) await generateModel({ path: mainFile, shape: '0.5b', quant: 'Q4_0', seed: 1 });
  if (!existsSync(smallFile)) await generateModel({ path: smallFile, shape: SMALL_SHAPE, quant: 'Q4_0', seed: 2 });
  log(`models ready in ${dir} (${((performance.now() - generatedAt) / 1000).toFixed(1)} s)`);

  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  const load = (name: string, file: string, sequences: number) =>
    ModelEngine.load({ entry: withModelDefaults({ name, path: file, context_size: 1024 * sequences, sequences, gpu: 'cpu' }), logger: quiet, llama });
  const main = await load('main-0.5b', mainFile, SEQUENCES);
  const small = await load('small', smallFile, 2);
  log(`main: threads ${main.info.threads}/${main.info.batch_threads} (${main.info.threads_reason}), ${main.info.sequences} sequences; small: ${small.info.sequences} sequences`);
  await main.warmPrefix(PREFIX);
  await small.warmPrefix(PREFIX);

  const home = new SimDirectory();
  const agent = new Agent({ directory: home, engine: () => null, logger: quiet });
  await agent.match('turn on the kitchen lamp');

  type Result = { text: string; generated: number } | AgentResponse;
  const modelLane = (engine: ModelEngine) =>
    new ModelLane<BenchRequest, Result>({
      engine: () => engine,
      run: async (job, eng) => {
        const r = await eng.generate({ prefix: PREFIX, prompt: job.request.prompt, maxTokens: job.grant.max_output_tokens });
        return { text: r.text, generated: r.generated_tokens };
      },
    });
  const mainLane = modelLane(main);
  const smallLane = modelLane(small);
  const promptTokens = new Map<string, number>();
  const plan = (request: BenchRequest): WorkPlan => {
    let tokens = promptTokens.get(request.prompt);
    if (tokens === undefined) {
      tokens = main.tokenize(request.prompt).length;
      promptTokens.set(request.prompt, tokens);
    }
    return { prompt_tokens: tokens, prefix_tokens: 150, prefix_cached: true, max_output_tokens: OUTPUT_TOKENS, short_output_tokens: SHORT_TOKENS, expected_output_tokens: OUTPUT_TOKENS };
  };
  const scheduler = new Scheduler<BenchRequest, Result>({
    config: { default_deadline_ms: DEADLINE_MS, max_concurrency: 'auto' },
    lanes: { main: mainLane, small: smallLane },
    tryFastPath: async (request) => ((await agent.match(request.text)) ? () => agent.handle({ text: request.text }, { path: 'fast' }) : null),
    plan: (request) => plan(request),
  });

  // Calibration: teach the service models and let the auto concurrency explore (long deadlines).
  await mainLane.calibrate({ runs: 4, prefix: PREFIX, prompt: 'User: turn the lights down a bit please\nAssistant:', maxTokens: OUTPUT_TOKENS });
  await smallLane.calibrate({ runs: 4, prefix: PREFIX, prompt: 'User: turn the lights down a bit please\nAssistant:', maxTokens: OUTPUT_TOKENS });
  const calib = arrivals(1, 1000, 7).filter((r) => r.kind === 'model');
  let c = 0;
  const sequential: number[] = [];
  for (let i = 0; i < 8; i++) {
    const t0 = performance.now();
    await scheduler.submit({ request: calib[c++]!, deadline_ms: 10_000 });
    sequential.push(performance.now() - t0);
  }
  for (let round = 0; round < 3; round++) {
    const k = scheduler.concurrency;
    await Promise.all(Array.from({ length: 2 * k }, () => scheduler.submit({ request: calib[c++]!, deadline_ms: 10_000 }).catch(() => {})));
    scheduler.tuneConcurrency();
  }
  const concurrency = scheduler.concurrency;
  const serviceMs = percentile([...sequential].sort((a, b) => a - b), 50)!;
  log(`calibrated: model request alone ${serviceMs.toFixed(1)} ms, concurrency ${concurrency}, main model ${JSON.stringify(scheduler.lane('main')!.model.snapshot())}`);

  const clawbox: System = {
    name: 'clawbox',
    submit: (request) =>
      scheduler.submit({ request, source: 'mqtt' }).then(
        (o) => ({ kind: request.kind, status: 'ok' as Status, rung: o.rung === 'none' ? 'none' : o.rung }),
        (error: unknown) => ({ kind: request.kind, ...classify(error) }),
      ),
  };
  const fifoQueue = new FifoQueue(concurrency, FIFO_MAX_QUEUE);
  const fifo: System = {
    name: 'fifo',
    submit: (request, cut) =>
      fifoQueue
        .submit<unknown>(
          () => (request.kind === 'fast' ? agent.handle({ text: request.text }) : main.generate({ prefix: PREFIX, prompt: request.prompt, maxTokens: OUTPUT_TOKENS, signal: cut })),
          cut,
        )
        .then(
          () => ({ kind: request.kind, status: 'ok' as Status, rung: 'none' }),
          (error: unknown) => {
            const busy = (error as { code?: unknown })?.code === 'BUSY';
            return { kind: request.kind, ...(cut.aborted && !busy ? { status: 'cut' as Status, rung: 'none' } : classify(error)) };
          },
        ),
  };

  // Capacity: highest rate at which FIFO's p99 <= deadline.
  const guess = 0.7 / ((1 - FAST_SHARE) * (serviceMs / 1000)) / Math.max(1, 2 - concurrency * 0.5);
  let lo = guess / 4;
  let hi = guess * 3;
  const capacityRuns: Array<{ rate: number; seconds: number; p99: number | null; ok: boolean }> = [];
  for (let step = 0; step < CAPACITY_STEPS; step++) {
    const rate = Math.sqrt(lo * hi);
    // Long enough for ~20 model requests (a p99 of three samples means nothing), within a cap.
    const seconds = Math.min(QUICK ? 10 : 30, Math.max(CAPACITY_S, 20 / (rate * (1 - FAST_SHARE))));
    const records = await drive(fifo, arrivals(rate, seconds, 1000 + step), seconds);
    const lat = records.filter((r) => r.status === 'ok').map((r) => r.latency_ms).sort((a, b) => a - b);
    const complete = records.every((r) => r.status === 'ok');
    const p99 = percentile(lat, 99);
    const ok = complete && p99 !== null && p99 <= DEADLINE_MS;
    capacityRuns.push({ rate: Math.round(rate * 10) / 10, seconds: Math.round(seconds), p99: p99 === null ? null : Math.round(p99), ok });
    log(`capacity probe ${rate.toFixed(1)} req/s for ${seconds.toFixed(0)} s: p99 ${p99?.toFixed(0)} ms ${ok ? 'ok' : 'too slow'}`);
    if (ok) lo = rate;
    else hi = rate;
    await sleep(500);
  }
  const capacity = lo;
  // When even the slowest probe missed, a model request alone is about as slow as the deadline on this
  // machine: there is no rate at which the FIFO holds it, and `capacity` is only the floor of the search.
  const capacityFound = capacityRuns.some((run) => run.ok);
  log(
    capacityFound
      ? `capacity ~ ${capacity.toFixed(1)} req/s (${(capacity * (1 - FAST_SHARE)).toFixed(1)} model req/s)`
      : `capacity NOT FOUND: no probed rate kept the FIFO's p99 <= ${DEADLINE_MS} ms; levels are multiples of ${capacity.toFixed(1)} req/s, the floor of the search`,
  );

  const withBrain = BRAIN ? await brainSystem(mainFile, main.info.sequences, (request) => plan(request), agent, [mainLane, smallLane]) : null;
  const levels: LevelFigures[] = [];
  for (const [index, level] of LEVELS.entries()) {
    const rate = capacity * level;
    const requests = arrivals(rate, LEVEL_S, 2000 + index);
    const pairs = index % 2 === 0 ? [clawbox, fifo] : [fifo, clawbox];
    const order = withBrain ? [...pairs, withBrain.system] : pairs;
    for (const system of order) {
      const records = await drive(system, requests, LEVEL_S);
      const f = figures(system.name, level, rate, LEVEL_S, records, capacity);
      levels.push(f);
      log(`${level}x ${system.name}: p99 ${f.p99_ms} ms, goodput ${f.goodput_rps}/s, shed ${f.shed_pct}%, misses ${f.deadline_misses}`);
      await sleep(1000);
    }
  }

  const stats = scheduler.stats.snapshot();
  const machine = {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cpus: os.cpus().length,
    memory_gb: Math.round(os.totalmem() / 2 ** 30),
    loadavg_end: os.loadavg().map((n) => Math.round(n * 100) / 100),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
  const result = {
    date: new Date().toISOString(),
    quick: QUICK,
    machine,
    deadline_ms: DEADLINE_MS,
    mix: { fast: FAST_SHARE, model: 1 - FAST_SHARE, output_tokens: OUTPUT_TOKENS, short_output_tokens: SHORT_TOKENS },
    models: {
      main: { file: 'synthetic 0.5B-shape Q4_0 (random weights)', threads: main.info.threads, batch_threads: main.info.batch_threads, sequences: main.info.sequences },
      small: { file: 'synthetic 8-layer n_embd 512 Q4_0 (random weights)', sequences: small.info.sequences },
    },
    calibration: { model_request_alone_ms: Math.round(serviceMs * 10) / 10, concurrency, service_model: scheduler.lane('main')!.model.snapshot() },
    brain: withBrain ? { where: 'another process on this machine (bench/brain-child.ts), gRPC over mutual TLS 1.3 on loopback', model: 'the same synthetic 0.5B-shape Q4_0', sequences: BRAIN_SEQUENCES } : null,
    capacity_rps: Math.round(capacity * 10) / 10,
    capacity_found: capacityFound,
    capacity_runs: capacityRuns,
    levels,
    scheduler: { decision_us: stats.decision_us, shed: stats.shed, degraded: stats.degraded, stalls: stats.stalls },
  };

  const header = '| load | system | offered req/s | answered | p50 ms | p99 ms | max ms | model p99 | fast p99 | goodput req/s (of capacity) | shed % | degraded % | deadline misses |';
  const rows = levels.map((f) =>
    [
      `${f.level}x`,
      f.system,
      f.offered_rps,
      f.answered,
      f.p50_ms ?? '-',
      f.p99_ms ?? '-',
      f.max_ms ?? '-',
      f.model_p99_ms ?? '-',
      f.fast_p99_ms ?? '-',
      `${f.goodput_rps} (${f.goodput_of_capacity === null ? '-' : `${Math.round(f.goodput_of_capacity * 100)} %`})`,
      f.shed_pct,
      Object.entries(f.degraded_pct).map(([k, v]) => `${k} ${v}`).join(', ') || '0',
      f.deadline_misses + (f.cut ? ` (${f.cut} cut)` : ''),
    ].join(' | '),
  );
  const table = [header, `|${'---|'.repeat(13)}`, ...rows.map((r) => `| ${r} |`)].join('\n');
  process.stdout.write(
    `\nOverload, deadline ${DEADLINE_MS} ms, ${LEVEL_S} s per level${QUICK ? ' (quick)' : ''}; capacity ${result.capacity_rps} req/s ` +
      `(${capacityFound ? `FIFO p99 <= ${DEADLINE_MS} ms` : `NOT FOUND: the floor of the search, no rate kept FIFO p99 <= ${DEADLINE_MS} ms`}); ${machine.cpus} x ${machine.cpu}, load avg at end ${machine.loadavg_end.join(' ')}\n` +
      `main: threads ${main.info.threads}/${main.info.batch_threads}, concurrency ${concurrency}; decision p50 ${stats.decision_us.p50} us, p99 ${stats.decision_us.p99} us\n\n${table}\n`,
  );
  const out = path.join(here, 'results');
  mkdirSync(out, { recursive: true });
  const file = path.join(out, `overload-${result.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${path.relative(process.cwd(), file)}`);

  scheduler.stop();
  await withBrain?.stop();
  agent.close();
  await small.dispose();
  await main.dispose();
  await llama.dispose();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
