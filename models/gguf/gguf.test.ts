import { appendFile, copyFile, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { LlamaLogLevel, getLlama, readGgufFileInfo } from 'node-llama-cpp';
import t from 'tap';
import { STORIES_PATH, rejectionCode, storiesSkipReason, tempDir } from '../testing/fixtures.js';
import { GGUF_MAGIC } from './format.js';
import { generateModel } from './generate.js';
import { dequantizeQ4_0, dequantizeQ8_0, fromHalf, quantizeQ4_0, quantizeQ8_0, toHalf } from './quantize.js';
import { inspectGguf, readGgufHeader } from './reader.js';
import { syntheticVocab } from './tokenizer.js';

t.test('half floats round-trip exactly representable values and round others', async (t) => {
  for (const v of [0, 1, -2, 0.5, 65504, 2 ** -24, -0.000030517578125]) t.equal(fromHalf(toHalf(v)), v, `${v}`);
  t.equal(toHalf(1e6), 0x7c00, 'overflow is infinity');
  t.ok(Math.abs(fromHalf(toHalf(0.1)) - 0.1) < 1e-4);
});

t.test('Q8_0 and Q4_0 quantise within a step of the block scale', async (t) => {
  const values = new Float32Array(64).map((_, i) => Math.sin(i * 0.37) * (i < 32 ? 1 : 0.01));
  const q8 = quantizeQ8_0(values);
  t.equal(q8.length, 2 * 34);
  const back8 = dequantizeQ8_0(q8);
  const q4 = quantizeQ4_0(values);
  t.equal(q4.length, 2 * 18);
  const back4 = dequantizeQ4_0(q4);
  for (let block = 0; block < 2; block++) {
    const slice = [...values.slice(block * 32, block * 32 + 32)];
    const amax = Math.max(...slice.map(Math.abs));
    for (let j = 0; j < 32; j++) {
      const i = block * 32 + j;
      t.ok(Math.abs(back8[i]! - values[i]!) <= (amax / 127) * 0.51 + 1e-3 * amax, `q8 value ${i}`);
      // Q4_0 spans [-8d, 7d] with the sign of the extreme value at -8d: the other side may clip by one step.
      t.ok(Math.abs(back4[i]! - values[i]!) <= amax / 8 + 1e-3 * amax, `q4 value ${i}`);
    }
  }
  t.throws(() => quantizeQ8_0(new Float32Array(33)), /multiple of 32/);
});

t.test('synthetic vocabulary is exact-size, unique and prefix-closed', async (t) => {
  for (const size of [512, 32000]) {
    const vocab = syntheticVocab(size);
    t.equal(vocab.tokens.length, size);
    t.equal(new Set(vocab.tokens).size, size, 'unique');
    const set = new Set(vocab.tokens);
    const unreachable = vocab.tokens.filter((tok, i) => vocab.types[i] === 1 && tok.length > 1 && !set.has(tok.slice(0, -1)));
    t.same(unreachable, [], 'every piece has its prefix');
  }
  t.throws(() => syntheticVocab(100));
});

t.test('generated tiny models load in node-llama-cpp, tokenize and generate', async (t) => {
  const dir = await tempDir(t);
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  t.teardown(() => llama.dispose());
  for (const quant of ['F32', 'Q8_0', 'Q4_0'] as const) {
    const file = path.join(dir, `tiny-${quant}.gguf`);
    const generated = await generateModel({ path: file, shape: 'tiny', quant, seed: 3 });
    const info = await inspectGguf(file);
    t.match(info, { architecture: 'llama', quantization: quant, context_length: 2048, vocab_size: 512, layers: 2, tensor_count: 21 });
    t.equal(info.parameters, generated.parameters);
    t.equal(info.file_size, generated.bytes);
    const model = await llama.loadModel({ modelPath: file });
    const text = 'turn on the kitchen lamp {"brightness": 42}';
    const tokens = model.tokenize(text);
    t.ok(tokens.length < text.length, `${quant}: word pieces merge (${tokens.length} tokens)`);
    t.equal(model.detokenize(tokens), text, `${quant}: detokenize round-trips`);
    const context = await model.createContext({ contextSize: 256, threads: 1 });
    const sequence = context.getSequence();
    const out: number[] = [];
    for await (const token of sequence.evaluate(model.tokenize('Once upon a time'), { temperature: 0 })) {
      out.push(token);
      if (out.length === 4) break;
    }
    t.equal(out.length, 4, `${quant}: generates tokens`);
    await context.dispose();
    await model.dispose();
  }
  // Same seed, same bytes: the generator is deterministic.
  const a = await generateModel({ path: path.join(dir, 'a.gguf'), shape: 'tiny', quant: 'Q4_0', seed: 9 });
  const b = await generateModel({ path: path.join(dir, 'b.gguf'), shape: 'tiny', quant: 'Q4_0', seed: 9 });
  t.equal(a.sha256, b.sha256);
});

t.test('header reader agrees with node-llama-cpp on the real model', { skip: storiesSkipReason() }, async (t) => {
  const mine = await inspectGguf(STORIES_PATH);
  const theirs = await readGgufFileInfo(STORIES_PATH, { readTensorInfo: true });
  t.equal(mine.architecture, theirs.metadata.general.architecture);
  t.equal(mine.tensor_count, theirs.tensorInfo?.length);
  t.equal(mine.context_length, 2048);
  t.equal(mine.quantization, 'F32');
  t.equal(mine.vocab_size, 512);
  const params = (theirs.tensorInfo ?? []).reduce((n, ti) => n + ti.dimensions.reduce((a: number, d) => a * Number(d), 1), 0);
  t.equal(mine.parameters, params);
});

t.test('reader rejects missing, foreign, truncated and hostile files with specific codes', async (t) => {
  const dir = await tempDir(t);
  const good = path.join(dir, 'good.gguf');
  await generateModel({ path: good, shape: 'tiny', quant: 'Q4_0', seed: 1 });
  const expectCode = async (file: string, code: string, what: string) => {
    t.equal(await rejectionCode(readGgufHeader(file)), code, what);
  };
  await expectCode(path.join(dir, 'nope.gguf'), 'MODEL_FILE_MISSING', 'missing file');
  const text = path.join(dir, 'notes.gguf');
  await writeFile(text, 'this is a text file pretending to be a model\n');
  await expectCode(text, 'MODEL_NOT_GGUF', 'text file');
  await expectCode(dir, 'MODEL_NOT_GGUF', 'a directory');
  const empty = path.join(dir, 'empty.gguf');
  await writeFile(empty, '');
  await expectCode(empty, 'MODEL_TRUNCATED', 'empty file');
  for (const [name, keep] of [['header-cut', 40], ['data-cut', 60_000], ['one-byte-short', -1]] as const) {
    const file = path.join(dir, `${name}.gguf`);
    await copyFile(good, file);
    const size = (await readGgufHeader(good)).expectedSize;
    await truncate(file, keep < 0 ? size - 1 : keep);
    await expectCode(file, 'MODEL_TRUNCATED', name);
  }
  // A header that claims a 2^60-byte string must not allocate it.
  const hostile = Buffer.alloc(40);
  hostile.writeUInt32LE(GGUF_MAGIC, 0);
  hostile.writeUInt32LE(3, 4);
  hostile.writeBigUInt64LE(0n, 8);
  hostile.writeBigUInt64LE(1n, 16);
  hostile.writeBigUInt64LE(2n ** 60n, 24);
  const hostileFile = path.join(dir, 'hostile.gguf');
  await writeFile(hostileFile, hostile);
  await expectCode(hostileFile, 'MODEL_TRUNCATED', 'absurd string length');
  const v1 = path.join(dir, 'v1.gguf');
  await writeFile(v1, Buffer.from([0x47, 0x47, 0x55, 0x46, 1, 0, 0, 0]));
  await expectCode(v1, 'MODEL_UNSUPPORTED', 'GGUF version 1');
  // Trailing bytes after the data are tolerated (llama.cpp ignores them).
  const padded = path.join(dir, 'padded.gguf');
  await copyFile(good, padded);
  await appendFile(padded, Buffer.alloc(10));
  t.equal((await inspectGguf(padded)).quantization, 'Q4_0');
});
