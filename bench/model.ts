/**
 * npm run bench:model — local model throughput and latency.
 *
 * Generates (into a temp dir, never committed) llama-architecture GGUFs with the shape of a ~0.5B model
 * (n_embd 896, 24 layers, 14 heads / 2 KV heads, ffn 4864, 32k vocab) in Q4_0 and Q8_0 with random
 * weights: synthetic weights, same compute as a real model of that shape. For threads 1 and 2 it
 * measures, for clawbox's engine and for the bare node-llama-cpp loop on the same tokens (the floor):
 * load time, prefill tok/s, decode tok/s, time to first token for a 20-token request after a 200-token
 * prefix, evaluated cold and taken from the KV cache, and the agent's end-to-end latency for a grammar-constrained tool call.
 * Prints a table and writes JSON to bench/results/.
 *
 * Options (env): BENCH_QUANTS=Q4_0,Q8_0  BENCH_THREADS=1,2  BENCH_REPEAT=3  BENCH_MODEL_DIR=<reuse files>
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Llama, LlamaLogLevel, type LlamaModel, type Token, getLlama } from 'node-llama-cpp';
import pino from 'pino';
import { Agent } from '../agent/agent.js';
import { withModelDefaults } from '../models/config-schema.js';
import { ModelEngine } from '../models/engine/engine.js';
import type { GeneratedQuant } from '../models/gguf/format.js';
import { generateModel } from '../models/gguf/generate.js';
import { SimDirectory } from '../agent/testing/sim-directory.js';
import { median } from './stats.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const QUANTS = (process.env.BENCH_QUANTS ?? 'Q4_0,Q8_0').split(',') as GeneratedQuant[];
const THREADS = (process.env.BENCH_THREADS ?? '1,2').split(',').map(Number);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const DECODE_TOKENS = 32;
const quiet = pino({ level: 'silent' });

const WORDS = 'the kitchen lamp living room turn on off set to light hall bed thermostat temperature brightness open close stop what is once upon time there was little girl boy day happy play'.split(' ');

/** Deterministic text of about `words` words; distinct per seed so cold runs share nothing but BOS. */
function text(words: number, seed: number): string {
  // 32-bit LCG (Math.imul keeps it exact); the first word comes straight from the seed so that
  // consecutive seeds never share a first word.
  let a = Math.imul(seed, 2654435761) >>> 0;
  const out: string[] = [WORDS[seed % WORDS.length]!];
  for (let i = 1; i < words; i++) {
    a = (Math.imul(a, 1103515245) + 12345) >>> 0;
    out.push(WORDS[(a >>> 16) % WORDS.length]!);
  }
  return out.join(' ');
}

/** Text of exactly `tokens` tokens (after tokenization by this model), found by trimming words. */
function textOfTokens(model: LlamaModel, tokens: number, seed: number): string {
  let words = tokens;
  let s = text(words, seed);
  while (model.tokenize(s).length < tokens) s = text(++words, seed);
  while (model.tokenize(s).length > tokens && words > 1) s = text(--words, seed);
  return s;
}

interface Figures {
  load_ms: number;
  prefill_tok_s: number;
  decode_tok_s: number;
  ttft_cold_ms: number;
  ttft_cached_ms: number;
  /** Agent tool call end to end, with and without jump-forward; tokens as sampled+forced. */
  tool_call_ms?: number;
  tool_call_tokens?: string;
  tool_call_plain_ms?: number;
  tool_call_plain_tokens?: string;
}

type Metric = 'prefill_tok_s' | 'decode_tok_s' | 'ttft_cold_ms' | 'ttft_cached_ms';

/** One side of the comparison: each metric measured once per call, with repetition index i. */
interface Runner {
  load_ms: number;
  measure: Record<Metric, (i: number) => Promise<number>>;
  dispose(): Promise<void>;
}

/** The floor: node-llama-cpp's own sequence.evaluate loop, no clawbox code around it. */
async function bareRunner(llama: Llama, file: string, threads: number): Promise<Runner> {
  llama.maxThreads = threads;
  const started = performance.now();
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  const context = await model.createContext({ contextSize: 1024, sequences: 1, threads });
  const load_ms = performance.now() - started;
  const sequence = context.getSequence();
  const bos = model.tokens.bos!;
  const first = async (tokens: Token[]) => {
    llama.maxThreads = threads;
    const t0 = performance.now();
    const it = sequence.evaluate(tokens, { temperature: 0 });
    await it.next();
    const ms = performance.now() - t0;
    await it.return();
    return ms;
  };
  const prompt300 = [bos, ...model.tokenize(textOfTokens(model, 299, 1))];
  const prefix = [bos, ...model.tokenize(textOfTokens(model, 199, 7))];
  return {
    load_ms,
    measure: {
      prefill_tok_s: async () => {
        await sequence.clearHistory();
        return prompt300.length / ((await first(prompt300)) / 1000);
      },
      decode_tok_s: async (i) => {
        await sequence.clearHistory();
        llama.maxThreads = threads;
        const it = sequence.evaluate([bos, ...model.tokenize(text(8, 100 + i))], { temperature: 0 });
        await it.next();
        const t0 = performance.now();
        for (let n = 0; n < DECODE_TOKENS; n++) await it.next();
        const ms = performance.now() - t0;
        await it.return();
        return DECODE_TOKENS / (ms / 1000);
      },
      ttft_cold_ms: async (i) => {
        await sequence.clearHistory();
        return first([bos, ...model.tokenize(textOfTokens(model, 199, 400 + i)), ...model.tokenize(textOfTokens(model, 20, 200 + i))]);
      },
      ttft_cached_ms: async (i) => {
        await sequence.clearHistory();
        await sequence.evaluateWithoutGeneratingNewTokens(prefix);
        return first(model.tokenize(textOfTokens(model, 20, 300 + i)));
      },
    },
    async dispose() {
      await context.dispose();
      await model.dispose();
    },
  };
}

async function clawboxRunner(llama: Llama, file: string, threads: number): Promise<Runner & { engine: ModelEngine }> {
  const started = performance.now();
  const engine = await ModelEngine.load({
    entry: withModelDefaults({ name: 'bench', path: file, context_size: 1024, sequences: 1, threads, batch_threads: threads, gpu: 'cpu' }),
    logger: quiet,
    llama,
  });
  const load_ms = performance.now() - started;
  const model = engine.model;
  const prompt300 = textOfTokens(model, 299, 1);
  const prefix = textOfTokens(model, 199, 7);
  return {
    engine,
    load_ms,
    measure: {
      prefill_tok_s: async (i) => {
        engine.setThreads({ threads, batchThreads: threads });
        // A leading word that differs each time defeats prefix reuse: a cold 300-token prefill.
        const r = await engine.generate({ prompt: `${WORDS[i % WORDS.length]} ${prompt300}`, maxTokens: 1 });
        return r.evaluated_tokens / (r.timings.prefill_ms / 1000);
      },
      decode_tok_s: async (i) => {
        engine.setThreads({ threads, batchThreads: threads });
        const r = await engine.generate({ prompt: text(8, 100 + i), maxTokens: DECODE_TOKENS + 1 });
        return (r.generated_tokens - 1) / (r.timings.decode_ms / 1000);
      },
      ttft_cold_ms: async (i) => {
        engine.setThreads({ threads, batchThreads: threads });
        // The same request shape as the cached case, with a prefix no sequence has seen.
        const r = await engine.generate({ prefix: textOfTokens(model, 199, 400 + i), prompt: textOfTokens(model, 20, 200 + i), maxTokens: 1 });
        // Cold means nothing but BOS came from the cache.
        if (r.cached_tokens > 1) throw new Error(`cold TTFT run reused ${r.cached_tokens} tokens`);
        return r.timings.prefill_ms + r.timings.queue_ms;
      },
      ttft_cached_ms: async (i) => {
        engine.setThreads({ threads, batchThreads: threads });
        await engine.warmPrefix(prefix);
        const r = await engine.generate({ prefix, prompt: textOfTokens(model, 20, 300 + i), maxTokens: 1 });
        return r.timings.prefill_ms + r.timings.queue_ms;
      },
    },
    dispose: () => engine.dispose(),
  };
}

/** Both sides loaded side by side; every repetition measures both, alternating who goes first. */
async function compare(llama: Llama, file: string, threads: number): Promise<{ clawbox: Figures; bare: Figures }> {
  const claw = await clawboxRunner(llama, file, threads);
  const floor = await bareRunner(llama, file, threads);
  const samples = { clawbox: {} as Record<Metric, number[]>, bare: {} as Record<Metric, number[]> };
  const metrics: Metric[] = ['prefill_tok_s', 'decode_tok_s', 'ttft_cold_ms', 'ttft_cached_ms'];
  for (const metric of metrics) {
    samples.clawbox[metric] = [];
    samples.bare[metric] = [];
    for (let i = 0; i < REPEAT; i++) {
      const order = i % 2 === 0 ? (['clawbox', 'bare'] as const) : (['bare', 'clawbox'] as const);
      for (const side of order) samples[side][metric].push(await (side === 'clawbox' ? claw : floor).measure[metric](i));
    }
  }
  await floor.dispose();
  // End to end: an utterance the fast path does not know, through the model with the tool-call grammar,
  // with jump-forward decoding (forced JSON structure evaluated in batches) and without (one JSON grammar).
  const agents = {
    jf: new Agent({ directory: new SimDirectory(), engine: () => claw.engine, logger: quiet, maxTokens: 96, jumpForward: true }),
    plain: new Agent({ directory: new SimDirectory(), engine: () => claw.engine, logger: quiet, maxTokens: 96, jumpForward: false }),
  };
  await agents.jf.refreshPrefix();
  const calls = { jf: [] as number[], plain: [] as number[] };
  const tokens = { jf: '', plain: '' };
  for (let i = 0; i < REPEAT; i++) {
    const order = i % 2 === 0 ? (['jf', 'plain'] as const) : (['plain', 'jf'] as const);
    for (const kind of order) {
      const r = await agents[kind].handle({ text: ['it is too dark in here', 'make it cosy', 'I am going to bed'][i % 3]! });
      tokens[kind] = `${r.tokens?.generated ?? 0}+${r.tokens?.forced ?? 0}`;
      calls[kind].push(r.timings.total_ms);
    }
  }
  agents.jf.close();
  agents.plain.close();
  await claw.dispose();
  const figures = (side: 'clawbox' | 'bare', load_ms: number): Figures => ({
    load_ms,
    prefill_tok_s: median(samples[side].prefill_tok_s),
    decode_tok_s: median(samples[side].decode_tok_s),
    ttft_cold_ms: median(samples[side].ttft_cold_ms),
    ttft_cached_ms: median(samples[side].ttft_cached_ms),
  });
  return {
    clawbox: {
      ...figures('clawbox', claw.load_ms),
      tool_call_ms: median(calls.jf),
      tool_call_tokens: tokens.jf,
      tool_call_plain_ms: median(calls.plain),
      tool_call_plain_tokens: tokens.plain,
    },
    bare: figures('bare', floor.load_ms),
  };
}

function row(cells: Array<string | number>): string {
  return `| ${cells.map((c) => (typeof c === 'number' ? (c >= 100 ? c.toFixed(0) : c.toFixed(1)) : c)).join(' | ')} |`;
}

async function main(): Promise<void> {
  const dir = process.env.BENCH_MODEL_DIR ?? (await mkdtemp(path.join(os.tmpdir(), 'clawbox-bench-model-')));
  const machine = {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cpus: os.cpus().length,
    memory_gib: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    load_average_at_start: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
  console.error(`machine: ${machine.cpu}, ${machine.cpus} CPUs, ${machine.memory_gib} GiB, load ${machine.load_average_at_start.join(' ')}`);
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  const results: Array<{ quant: string; threads: number; file_mib: number; generate_ms: number; load_average: number[]; clawbox: Figures; bare: Figures }> = [];
  try {
    for (const quant of QUANTS) {
      const file = path.join(dir, `synthetic-0.5b-${quant}.gguf`);
      let generate_ms = 0;
      if (!existsSync(file)) {
        const t0 = performance.now();
        await generateModel({ path: file, shape: '0.5b', quant, seed: 1 });
        generate_ms = performance.now() - t0;
      }
      const { size } = await import('node:fs/promises').then((fs) => fs.stat(file));
      console.error(`${quant}: ${(size / 2 ** 20).toFixed(0)} MiB${generate_ms ? `, generated in ${(generate_ms / 1000).toFixed(1)} s` : ''}`);
      for (const threads of THREADS) {
        const load_average = os.loadavg().map((l) => Number(l.toFixed(1)));
        const entry = { quant, threads, file_mib: size / 2 ** 20, generate_ms, load_average, ...(await compare(llama, file, threads)) };
        results.push(entry);
        console.error(`  threads ${threads}: decode ${entry.clawbox.decode_tok_s.toFixed(1)} tok/s (bare ${entry.bare.decode_tok_s.toFixed(1)})`);
      }
    }
  } finally {
    await llama.dispose();
    if (!process.env.BENCH_MODEL_DIR) await rm(dir, { recursive: true, force: true });
  }

  const lines = [
    `Synthetic weights, same compute as a real model of that shape (llama, n_embd 896, 24 layers, 14/2 heads, ffn 4864, 32k vocab). CPU, ${machine.cpus} CPUs (${machine.cpu}), Node ${machine.node}, node-llama-cpp 3.21.1; median of ${REPEAT}. "bare" = node-llama-cpp's sequence.evaluate loop on the same tokens.`,
    '',
    '| quant | threads | load ms (clawbox / bare) | prefill tok/s | decode tok/s | TTFT 200-tok prefix + 20-tok request, cold, ms | same, prefix cached, ms | tool call ms, jump-forward (sampled+forced tokens) | tool call ms, one JSON grammar (tokens) | load avg |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...results.map((r) =>
      row([
        r.quant,
        String(r.threads),
        `${r.clawbox.load_ms.toFixed(0)} / ${r.bare.load_ms.toFixed(0)}`,
        `${r.clawbox.prefill_tok_s.toFixed(0)} / ${r.bare.prefill_tok_s.toFixed(0)}`,
        `${r.clawbox.decode_tok_s.toFixed(1)} / ${r.bare.decode_tok_s.toFixed(1)}`,
        `${r.clawbox.ttft_cold_ms.toFixed(1)} / ${r.bare.ttft_cold_ms.toFixed(1)}`,
        `${r.clawbox.ttft_cached_ms.toFixed(1)} / ${r.bare.ttft_cached_ms.toFixed(1)}`,
        `${r.clawbox.tool_call_ms?.toFixed(0)} (${r.clawbox.tool_call_tokens})`,
        `${r.clawbox.tool_call_plain_ms?.toFixed(0)} (${r.clawbox.tool_call_plain_tokens})`,
        `${r.load_average.join(' ')}`,
      ]),
    ),
    '',
    'Cells are clawbox / bare. The tool call is end to end through the agent (prompt with 7 devices, cached prefix, grammar, ajv validation, simulated execution); random weights make it emit an arbitrary but grammar-valid call, so its token count varies. The bare loop has no tool-call equivalent.',
  ];
  console.log(lines.join('\n'));
  const out = path.join(here, 'results');
  await mkdir(out, { recursive: true });
  const file = path.join(out, `model-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify({ benchmark: 'model', machine, repeat: REPEAT, decode_tokens: DECODE_TOKENS, results }, null, 2)}\n`);
  console.error(`wrote ${path.relative(process.cwd(), file)}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
