/**
 * Reads a GGUF header without loading the weights: architecture, parameter count, quantisation, context
 * length, tensor count. Every field is bounds-checked against the file size, so a hostile or damaged
 * file gives MODEL_NOT_GGUF or MODEL_TRUNCATED instead of a huge allocation or a crash.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { ClawboxError } from '../../runtime/errors.js';
import { FILE_TYPE_NAMES, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufValueType, ggmlTypeName, tensorByteSize } from './format.js';

export type GgufMetaScalar = string | number | bigint | boolean;

export interface GgufTensorInfo {
  name: string;
  dims: number[];
  type: number;
  offset: bigint;
}

export interface GgufHeader {
  path: string;
  version: number;
  fileSize: number;
  /** Scalar metadata and short strings; arrays are summarised as `{array: length}`. */
  metadata: Record<string, GgufMetaScalar | { array: number; itemType: number }>;
  tensors: GgufTensorInfo[];
  dataOffset: number;
  /** Bytes the file must have to hold every tensor. */
  expectedSize: number;
}

export interface GgufSummary {
  architecture: string | null;
  name: string | null;
  parameters: number;
  /** e.g. Q4_0, Q8_0, F32 — from general.file_type, else the most common weight tensor type. */
  quantization: string;
  context_length: number | null;
  tensor_count: number;
  vocab_size: number | null;
  layers: number | null;
  embedding_length: number | null;
  file_size: number;
  has_chat_template: boolean;
  gguf_version: number;
}

const MAX_STRING = 64 * 1024 * 1024;
const KEEP_STRING = 4096;
const MAX_DIMS = 4;
const CHUNK = 1 << 20;

class Truncated extends Error {}
class Corrupt extends Error {}

/** Sequential little-endian reader over a file, buffering one chunk at a time. */
class FileCursor {
  #buf = Buffer.alloc(0);
  #bufStart = 0;
  pos = 0;

  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
  ) {}

  async #need(n: number): Promise<void> {
    if (this.pos + n > this.size) throw new Truncated(`needs ${this.pos + n} bytes, file has ${this.size}`);
    if (this.pos >= this.#bufStart && this.pos + n <= this.#bufStart + this.#buf.length) return;
    const length = Math.min(Math.max(n, CHUNK), this.size - this.pos);
    const buf = Buffer.alloc(length);
    const { bytesRead } = await this.fh.read(buf, 0, length, this.pos);
    if (bytesRead < n) throw new Truncated(`short read at ${this.pos}`);
    this.#buf = buf.subarray(0, bytesRead);
    this.#bufStart = this.pos;
  }
  #at(): number {
    return this.pos - this.#bufStart;
  }
  async u8(): Promise<number> {
    await this.#need(1);
    const v = this.#buf.readUInt8(this.#at());
    this.pos += 1;
    return v;
  }
  async u32(): Promise<number> {
    await this.#need(4);
    const v = this.#buf.readUInt32LE(this.#at());
    this.pos += 4;
    return v;
  }
  async u64(): Promise<bigint> {
    await this.#need(8);
    const v = this.#buf.readBigUInt64LE(this.#at());
    this.pos += 8;
    return v;
  }
  /** Reads a u64 that must be a sane count or length. */
  async count(what: string, max: number): Promise<number> {
    const v = await this.u64();
    if (v > BigInt(max)) {
      if (v > BigInt(this.size)) throw new Truncated(`${what} ${v} exceeds the file size`);
      throw new Corrupt(`${what} ${v} is implausible`);
    }
    return Number(v);
  }
  async string(keep = true): Promise<string | undefined> {
    const len = await this.count('string length', MAX_STRING);
    if (this.pos + len > this.size) throw new Truncated(`string of ${len} bytes runs past the end of the file`);
    if (!keep || len > KEEP_STRING) {
      this.pos += len;
      return undefined;
    }
    await this.#need(len);
    const s = this.#buf.toString('utf8', this.#at(), this.#at() + len);
    this.pos += len;
    return s;
  }
  skip(n: number): void {
    if (this.pos + n > this.size) throw new Truncated(`skipping ${n} bytes runs past the end of the file`);
    this.pos += n;
  }
  async scalar(type: number): Promise<GgufMetaScalar | undefined> {
    await this.#need(SCALAR_SIZE[type] ?? 0);
    const at = this.#at();
    let v: GgufMetaScalar;
    switch (type) {
      case GgufValueType.UINT8: v = this.#buf.readUInt8(at); break;
      case GgufValueType.INT8: v = this.#buf.readInt8(at); break;
      case GgufValueType.UINT16: v = this.#buf.readUInt16LE(at); break;
      case GgufValueType.INT16: v = this.#buf.readInt16LE(at); break;
      case GgufValueType.UINT32: v = this.#buf.readUInt32LE(at); break;
      case GgufValueType.INT32: v = this.#buf.readInt32LE(at); break;
      case GgufValueType.FLOAT32: v = this.#buf.readFloatLE(at); break;
      case GgufValueType.BOOL: v = this.#buf.readUInt8(at) !== 0; break;
      case GgufValueType.UINT64: v = this.#buf.readBigUInt64LE(at); break;
      case GgufValueType.INT64: v = this.#buf.readBigInt64LE(at); break;
      case GgufValueType.FLOAT64: v = this.#buf.readDoubleLE(at); break;
      default: return undefined;
    }
    this.pos += SCALAR_SIZE[type]!;
    return v;
  }
}

const SCALAR_SIZE: Record<number, number> = {
  [GgufValueType.UINT8]: 1,
  [GgufValueType.INT8]: 1,
  [GgufValueType.UINT16]: 2,
  [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4,
  [GgufValueType.INT32]: 4,
  [GgufValueType.FLOAT32]: 4,
  [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT64]: 8,
  [GgufValueType.INT64]: 8,
  [GgufValueType.FLOAT64]: 8,
};

async function readValue(cursor: FileCursor, type: number): Promise<GgufHeader['metadata'][string]> {
  if (type === GgufValueType.STRING) return (await cursor.string()) ?? '';
  if (type === GgufValueType.ARRAY) {
    const itemType = await cursor.u32();
    const length = await cursor.count('array length', cursor.size);
    if (itemType === GgufValueType.STRING) {
      for (let i = 0; i < length; i++) await cursor.string(false);
    } else if (SCALAR_SIZE[itemType] !== undefined) {
      cursor.skip(length * SCALAR_SIZE[itemType]!);
    } else {
      throw new Corrupt(`array of unknown item type ${itemType}`);
    }
    return { array: length, itemType };
  }
  const v = await cursor.scalar(type);
  if (v === undefined) throw new Corrupt(`unknown metadata value type ${type}`);
  return v;
}

function fail(code: 'MODEL_NOT_GGUF' | 'MODEL_TRUNCATED' | 'MODEL_UNSUPPORTED', path: string, message: string, details: Record<string, unknown> = {}): never {
  throw new ClawboxError(code, `${path}: ${message}`, { path, ...details });
}

/** Parses the header. Throws ClawboxError MODEL_FILE_MISSING, MODEL_NOT_GGUF, MODEL_TRUNCATED or MODEL_UNSUPPORTED. */
export async function readGgufHeader(path: string): Promise<GgufHeader> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ClawboxError('MODEL_FILE_MISSING', `${path}: no such file`, { path });
    throw new ClawboxError('MODEL_FILE_MISSING', `${path}: cannot open (${code ?? String(error)})`, { path }, { cause: error });
  }
  try {
    const stat = await fh.stat();
    if (!stat.isFile()) fail('MODEL_NOT_GGUF', path, 'not a regular file');
    const cursor = new FileCursor(fh, stat.size);
    if (stat.size < 4) fail(stat.size === 0 ? 'MODEL_TRUNCATED' : 'MODEL_NOT_GGUF', path, `only ${stat.size} bytes`, { bytes: stat.size });
    const magic = await cursor.u32();
    if (magic !== GGUF_MAGIC) fail('MODEL_NOT_GGUF', path, 'does not start with the GGUF magic');
    try {
      const version = await cursor.u32();
      if (version !== 2 && version !== 3) fail('MODEL_UNSUPPORTED', path, `GGUF version ${version} is not supported (2 or 3)`, { version });
      const tensorCount = await cursor.count('tensor count', 1_000_000);
      const kvCount = await cursor.count('metadata count', 1_000_000);
      const metadata: GgufHeader['metadata'] = {};
      for (let i = 0; i < kvCount; i++) {
        const key = (await cursor.string()) ?? `(long key ${i})`;
        const type = await cursor.u32();
        metadata[key] = await readValue(cursor, type);
      }
      const tensors: GgufTensorInfo[] = [];
      for (let i = 0; i < tensorCount; i++) {
        const name = (await cursor.string()) ?? `(long name ${i})`;
        const nDims = await cursor.u32();
        if (nDims < 1 || nDims > MAX_DIMS) throw new Corrupt(`tensor ${name} has ${nDims} dimensions`);
        const dims: number[] = [];
        for (let d = 0; d < nDims; d++) dims.push(await cursor.count(`tensor ${name} dimension`, 2 ** 40));
        const type = await cursor.u32();
        const offset = await cursor.u64();
        tensors.push({ name, dims, type, offset });
      }
      const alignmentValue = metadata['general.alignment'];
      const alignment = typeof alignmentValue === 'number' && alignmentValue > 0 ? alignmentValue : GGUF_DEFAULT_ALIGNMENT;
      const dataOffset = Math.ceil(cursor.pos / alignment) * alignment;
      let end = BigInt(dataOffset);
      for (const t of tensors) {
        const size = tensorByteSize(t.type, t.dims.reduce((n, d) => n * BigInt(d), 1n));
        if (size !== undefined && BigInt(dataOffset) + t.offset + size > end) end = BigInt(dataOffset) + t.offset + size;
      }
      const expectedSize = Number(end);
      if (expectedSize > stat.size) {
        fail('MODEL_TRUNCATED', path, `tensor data needs ${expectedSize} bytes but the file has ${stat.size}`, {
          bytes: stat.size,
          expected_bytes: expectedSize,
        });
      }
      return { path, version, fileSize: stat.size, metadata, tensors, dataOffset, expectedSize };
    } catch (error) {
      if (error instanceof Truncated) fail('MODEL_TRUNCATED', path, `header is cut short (${error.message})`, { bytes: stat.size });
      if (error instanceof Corrupt) fail('MODEL_NOT_GGUF', path, `corrupt GGUF header (${error.message})`);
      throw error;
    }
  } finally {
    await fh.close();
  }
}

function num(v: unknown): number | null {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return null;
}

export function summarizeGguf(header: GgufHeader): GgufSummary {
  const m = header.metadata;
  const architecture = typeof m['general.architecture'] === 'string' ? (m['general.architecture'] as string) : null;
  const archKey = (key: string) => (architecture ? num(m[`${architecture}.${key}`]) : null);
  let parameters = 0;
  const typeCounts = new Map<number, number>();
  for (const t of header.tensors) {
    const n = t.dims.reduce((a, b) => a * b, 1);
    parameters += n;
    // Weight matrices decide the quantisation; 1-D norms are F32 in every file.
    if (t.dims.length >= 2) typeCounts.set(t.type, (typeCounts.get(t.type) ?? 0) + n);
  }
  const fileType = num(m['general.file_type']);
  let quantization = fileType !== null ? FILE_TYPE_NAMES[fileType] : undefined;
  if (!quantization) {
    const top = [...typeCounts.entries()].sort((a, b) => b[1] - a[1])[0];
    quantization = top ? ggmlTypeName(top[0]) : 'unknown';
  }
  const tokens = m['tokenizer.ggml.tokens'];
  return {
    architecture,
    name: typeof m['general.name'] === 'string' ? (m['general.name'] as string) : null,
    parameters,
    quantization,
    context_length: archKey('context_length'),
    tensor_count: header.tensors.length,
    vocab_size: tokens && typeof tokens === 'object' && 'array' in tokens ? tokens.array : archKey('vocab_size'),
    layers: archKey('block_count'),
    embedding_length: archKey('embedding_length'),
    file_size: header.fileSize,
    has_chat_template: 'tokenizer.chat_template' in m,
    gguf_version: header.version,
  };
}

/** Header + summary in one call. */
export async function inspectGguf(path: string): Promise<GgufSummary> {
  return summarizeGguf(await readGgufHeader(path));
}
