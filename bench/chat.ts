/**
 * npm run bench:chat — streamed chat under load, beside device commands, on the real runtime.
 *
 * Runs `clawbox start` as a child process with a generated llama-architecture GGUF of a ~0.5B model's shape
 * (Q4_0, random weights: synthetic-weight figures, the compute of a real model of that shape) and one
 * simulated device the agent may not see (`agent: deny`), so every model answer is free text that streams.
 *
 *   1. baseline: device commands alone (MQTT `lamp/set` -> the state published back), at BENCH_CMD_RATE/s;
 *   2. capacity: BENCH_SESSIONS concurrent chat sessions back to back for BENCH_PHASE_S (a BUSY answer is
 *      retried after its retry-after-ms, as the SDKs do): answers per second;
 *   3. load 0.5x, 1x, 2x of that capacity: Poisson arrivals of streamed OpenAI chat completions
 *      (`stream: true`) for BENCH_PHASE_S each, with the device commands running all the time.
 *
 * Per phase: time to first token (first content chunk) and whole-answer time, p50/p99, answered / BUSY /
 * failed, and the device-command latency p50/p99 in the same window. A table and JSON under bench/results/.
 *
 * Options (env): BENCH_PHASE_S=30  BENCH_SESSIONS=8  BENCH_CMD_RATE=10  BENCH_MODEL_DIR=<reuse the GGUF>
 *                BENCH_LOADS=0.5,1,2  BENCH_THREADS=auto  BENCH_CONTENT_SAFETY=off (see CONTENT_SAFETY)
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import YAML from 'yaml';
import { generateModel } from '../models/gguf/generate.js';
import { startRuntime } from '../test/runtime-process.js';
import { machineFacts, percentile } from './stats.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const PHASE_S = Number(process.env.BENCH_PHASE_S ?? 30);
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 8);
const CMD_RATE = Number(process.env.BENCH_CMD_RATE ?? 10);
const LOADS = (process.env.BENCH_LOADS ?? '0.5,1,2').split(',').map(Number);
const THREADS = process.env.BENCH_THREADS ?? 'auto';
/**
 * Content safety screens a streamed reply word by word. Random weights write "words" with no spaces in them,
 * which would hold the whole reply back, so the screen is off unless BENCH_CONTENT_SAFETY=on.
 */
const CONTENT_SAFETY = process.env.BENCH_CONTENT_SAFETY === 'on';

interface ChatSample {
  ttft_ms: number | null;
  total_ms: number;
  outcome: 'ok' | 'busy' | 'failed';
  pieces: number;
  /** BUSY: the server's retry hint. */
  retry_after_ms?: number;
}

interface Summary {
  p50: number | null;
  p99: number | null;
  n: number;
}

function summary(values: number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const round = (n: number) => (Number.isFinite(n) ? Math.round(n * 10) / 10 : null);
  return { p50: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)), n: sorted.length };
}

/** One streamed OpenAI chat completion: first content chunk and the end, read as they arrive. */
async function chat(base: string, user: string, text: string): Promise<ChatSample> {
  const started = performance.now();
  let ttft: number | null = null;
  let pieces = 0;
  try {
    const response = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'clawbox', user, stream: true, messages: [{ role: 'user', content: text }] }),
    });
    if (response.status === 503) {
      await response.text();
      const retry = Number(response.headers.get('retry-after-ms') ?? 1000);
      return { ttft_ms: null, total_ms: performance.now() - started, outcome: 'busy', pieces: 0, retry_after_ms: retry };
    }
    if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
    const decoder = new TextDecoder();
    let buffer = '';
    let done = false;
    for await (const chunk of response.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
        const data = event.replace(/^data: /, '');
        if (data === '[DONE]') {
          done = true;
          continue;
        }
        const parsed = JSON.parse(data) as { choices?: { delta?: { content?: string } }[]; error?: unknown };
        if (parsed.error) throw new Error(JSON.stringify(parsed.error));
        if (parsed.choices?.[0]?.delta?.content) {
          pieces++;
          ttft ??= performance.now() - started;
        }
      }
    }
    if (!done) throw new Error('the stream ended without [DONE]');
    return { ttft_ms: ttft, total_ms: performance.now() - started, outcome: 'ok', pieces };
  } catch (error) {
    console.error(`chat failed: ${(error as Error).message}`);
    return { ttft_ms: ttft, total_ms: performance.now() - started, outcome: 'failed', pieces };
  }
}

/** Device commands at a steady rate: publish `lamp/set`, time until the lamp's state comes back. */
async function deviceProbe(mqttPort: number) {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { reconnectPeriod: 0 });
  const waiting = new Map<string, (at: number) => void>();
  client.on('message', (_topic, payload) => {
    const state = (JSON.parse(payload.toString()) as { state?: string }).state;
    if (state) waiting.get(state)?.(performance.now());
  });
  await client.subscribeAsync('clawbox/lamp', { qos: 0 });
  let samples: number[] = [];
  let failures = 0;
  let running = true;
  let on = false;
  const loop = (async () => {
    while (running) {
      const next = performance.now() + 1000 / CMD_RATE;
      on = !on;
      const wanted = on ? 'ON' : 'OFF';
      const sent = performance.now();
      const arrived = new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => resolve(null), 5000);
        waiting.set(wanted, (at) => {
          clearTimeout(timer);
          resolve(at);
        });
      });
      client.publish('clawbox/lamp/set', JSON.stringify({ state: wanted }), { qos: 0 });
      const at = await arrived;
      waiting.delete(wanted);
      if (at === null) failures++;
      else samples.push(at - sent);
      const rest = next - performance.now();
      if (rest > 0) await new Promise((resolve) => setTimeout(resolve, rest));
    }
  })();
  return {
    /** The samples since the last take. */
    take(): { latencies: number[]; failures: number } {
      const out = { latencies: samples, failures };
      samples = [];
      failures = 0;
      return out;
    },
    async stop() {
      running = false;
      await loop;
      await client.endAsync();
    },
  };
}

const PROMPTS = ['tell me a story about the sea', 'what should I cook tonight', 'explain how a thermostat works', 'say something nice', 'how was your day'];

async function main(): Promise<void> {
  const loadBefore = os.loadavg();
  const modelDir = process.env.BENCH_MODEL_DIR ?? mkdtempSync(path.join(os.tmpdir(), 'clawbox-bench-chat-'));
  const modelPath = path.join(modelDir, 'synthetic-0.5b-q4_0.gguf');
  if (!existsSync(modelPath)) {
    console.log('generating the 0.5B-shape Q4_0 GGUF (random weights) ...');
    await generateModel({ path: modelPath, shape: '0.5b', quant: 'Q4_0', seed: 11 });
  }
  const work = mkdtempSync(path.join(os.tmpdir(), 'clawbox-bench-chat-run-'));
  const configFile = path.join(work, 'config.yaml');
  writeFileSync(
    configFile,
    YAML.stringify({
      devices: [{ id: 'lamp', name: 'Bench lamp', driver: 'simulated', capabilities: ['switch'], agent: 'deny' }],
      ...(CONTENT_SAFETY ? {} : { plugins: { deny: ['content-safety'] } }),
      models: [{ name: 'synthetic-0.5b', path: modelPath, context_size: 2048, sequences: SESSIONS, threads: THREADS === 'auto' ? 'auto' : Number(THREADS), batch_threads: THREADS === 'auto' ? 'auto' : Number(THREADS) }],
    }),
  );
  const runtime = await startRuntime({ args: ['--config', configFile], stateDir: path.join(work, 'state'), startTimeoutMs: 120_000 });
  try {
    await runtime.waitForLog((l) => l.component === 'agent' && /main model warmed up/.test(l.msg), 300_000);
    const base = `http://127.0.0.1:${runtime.httpPort}`;
    const probe = await deviceProbe(runtime.mqttPort);
    const phaseMs = PHASE_S * 1000;
    const rows: Record<string, unknown>[] = [];

    console.log(`baseline: device commands alone for ${PHASE_S} s ...`);
    probe.take();
    await new Promise((resolve) => setTimeout(resolve, phaseMs));
    const baseline = probe.take();
    rows.push({ phase: 'baseline (no chat)', offered_per_s: 0, chat: null, device: { ...summary(baseline.latencies), failures: baseline.failures } });

    console.log(`capacity: ${SESSIONS} sessions back to back for ${PHASE_S} s ...`);
    const capacitySamples: ChatSample[] = [];
    const capacityEnd = performance.now() + phaseMs;
    const capacityStart = performance.now();
    await Promise.all(
      Array.from({ length: SESSIONS }, async (_, s) => {
        for (let i = 0; performance.now() < capacityEnd; i++) {
          const sample = await chat(base, `cap-${s}`, PROMPTS[(s + i) % PROMPTS.length]!);
          capacitySamples.push(sample);
          // As the SDKs do: a BUSY answer is retried after its hint, not at once.
          if (sample.retry_after_ms !== undefined) await new Promise((resolve) => setTimeout(resolve, Math.min(sample.retry_after_ms!, capacityEnd - performance.now())));
        }
      }),
    );
    const capacityS = (performance.now() - capacityStart) / 1000;
    const capacityDevice = probe.take();
    const capacity = capacitySamples.filter((c) => c.outcome === 'ok').length / capacityS;
    rows.push(phaseRow(`capacity (${SESSIONS} closed-loop sessions)`, null, capacitySamples, capacityDevice));
    console.log(`capacity: ${capacity.toFixed(2)} answers/s`);
    if (!(capacity > 0)) throw new Error('no chat was answered in the capacity phase; see the failures above');

    for (const load of LOADS) {
      const rate = capacity * load;
      console.log(`load ${load}x: ${rate.toFixed(2)} chats/s (Poisson) for ${PHASE_S} s ...`);
      const samples: Promise<ChatSample>[] = [];
      const end = performance.now() + phaseMs;
      let i = 0;
      while (performance.now() < end) {
        samples.push(chat(base, `load-${load}-${i}`, PROMPTS[i % PROMPTS.length]!));
        i++;
        await new Promise((resolve) => setTimeout(resolve, -Math.log(1 - Math.random()) * (1000 / rate)));
      }
      const done = await Promise.all(samples);
      rows.push(phaseRow(`${load}x load`, rate, done, probe.take()));
    }
    await probe.stop();

    printTable(rows);
    const result = {
      benchmark: 'chat',
      date: new Date().toISOString(),
      model: 'generated llama-architecture GGUF, 0.5B shape (n_embd 896, 24 layers), Q4_0, random weights (synthetic-weight figures)',
      sessions: SESSIONS,
      phase_s: PHASE_S,
      device_command_rate_per_s: CMD_RATE,
      content_safety: CONTENT_SAFETY,
      capacity_answers_per_s: Math.round(capacity * 100) / 100,
      rows,
      machine: machineFacts(loadBefore),
    };
    const out = path.join(here, 'results');
    mkdirSync(out, { recursive: true });
    const file = path.join(out, `chat-${result.date.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`\nJSON: ${path.relative(process.cwd(), file)}`);
    console.log(JSON.stringify(result));
  } finally {
    runtime.child.kill('SIGTERM');
    await runtime.exited;
    rmSync(work, { recursive: true, force: true });
    if (!process.env.BENCH_MODEL_DIR) rmSync(modelDir, { recursive: true, force: true });
  }
}

function phaseRow(phase: string, offered: number | null, samples: ChatSample[], device: { latencies: number[]; failures: number }): Record<string, unknown> {
  const ok = samples.filter((s) => s.outcome === 'ok');
  return {
    phase,
    offered_per_s: offered === null ? null : Math.round(offered * 100) / 100,
    chat: {
      requests: samples.length,
      answered: ok.length,
      busy: samples.filter((s) => s.outcome === 'busy').length,
      failed: samples.filter((s) => s.outcome === 'failed').length,
      ttft_ms: summary(ok.map((s) => s.ttft_ms).filter((v): v is number => v !== null)),
      answer_ms: summary(ok.map((s) => s.total_ms)),
      pieces_median: summary(ok.map((s) => s.pieces)).p50,
    },
    device: { ...summary(device.latencies), failures: device.failures },
  };
}

function printTable(rows: Record<string, unknown>[]): void {
  const fmt = (n: unknown) => (typeof n === 'number' ? (n >= 100 ? n.toFixed(0) : n.toFixed(1)) : '-');
  console.log('\n| phase | chats/s offered | answered / busy / failed | TTFT p50 / p99 ms | answer p50 / p99 ms | device cmd p50 / p99 ms |');
  console.log('|---|---|---|---|---|---|');
  for (const row of rows) {
    const chat = row.chat as null | { answered: number; busy: number; failed: number; ttft_ms: Summary; answer_ms: Summary };
    const device = row.device as Summary & { failures: number };
    console.log(
      `| ${String(row.phase)} | ${fmt(row.offered_per_s)} | ${chat ? `${chat.answered} / ${chat.busy} / ${chat.failed}` : '-'} | ${chat ? `${fmt(chat.ttft_ms.p50)} / ${fmt(chat.ttft_ms.p99)}` : '-'} | ${chat ? `${fmt(chat.answer_ms.p50)} / ${fmt(chat.answer_ms.p99)}` : '-'} | ${fmt(device.p50)} / ${fmt(device.p99)}${device.failures ? ` (${device.failures} lost)` : ''} |`,
    );
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
