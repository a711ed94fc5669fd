/**
 * A streaming GGUF v3 writer: metadata and tensor infos are built in memory (small), tensor data is
 * produced one tensor at a time by a callback and written straight to the file, so a 0.5B-shape model
 * never has to fit in memory at once. The sha256 of the file is computed on the way out.
 */
import { createHash } from 'node:crypto';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VERSION, type GgmlType, GgufValueType, tensorByteSize } from './format.js';

export type GgufScalar =
  | { type: GgufValueType.UINT32 | GgufValueType.INT32 | GgufValueType.FLOAT32; value: number }
  | { type: GgufValueType.UINT64; value: bigint }
  | { type: GgufValueType.BOOL; value: boolean }
  | { type: GgufValueType.STRING; value: string };

export type GgufMetaValue =
  | GgufScalar
  | { type: GgufValueType.ARRAY; itemType: GgufValueType.STRING; value: readonly string[] }
  | { type: GgufValueType.ARRAY; itemType: GgufValueType.FLOAT32 | GgufValueType.INT32; value: ArrayLike<number> };

export const meta = {
  u32: (value: number): GgufMetaValue => ({ type: GgufValueType.UINT32, value }),
  i32: (value: number): GgufMetaValue => ({ type: GgufValueType.INT32, value }),
  f32: (value: number): GgufMetaValue => ({ type: GgufValueType.FLOAT32, value }),
  bool: (value: boolean): GgufMetaValue => ({ type: GgufValueType.BOOL, value }),
  str: (value: string): GgufMetaValue => ({ type: GgufValueType.STRING, value }),
  strings: (value: readonly string[]): GgufMetaValue => ({ type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, value }),
  f32s: (value: ArrayLike<number>): GgufMetaValue => ({ type: GgufValueType.ARRAY, itemType: GgufValueType.FLOAT32, value }),
  i32s: (value: ArrayLike<number>): GgufMetaValue => ({ type: GgufValueType.ARRAY, itemType: GgufValueType.INT32, value }),
};

export interface GgufTensorSpec {
  name: string;
  /** ggml order: dims[0] is the contiguous (row) dimension. */
  dims: readonly number[];
  type: GgmlType;
  /** Produces the tensor's bytes; called once, in file order. */
  data(): Uint8Array | Promise<Uint8Array>;
}

export interface GgufWriteResult {
  bytes: number;
  sha256: string;
}

/** Little-endian growable byte buffer for the header. */
class ByteSink {
  #buf = Buffer.alloc(1 << 16);
  #len = 0;

  #ensure(extra: number): void {
    if (this.#len + extra <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + extra) size *= 2;
    const next = Buffer.alloc(size);
    this.#buf.copy(next, 0, 0, this.#len);
    this.#buf = next;
  }
  u32(v: number): void {
    this.#ensure(4);
    this.#buf.writeUInt32LE(v >>> 0, this.#len);
    this.#len += 4;
  }
  i32(v: number): void {
    this.#ensure(4);
    this.#buf.writeInt32LE(v | 0, this.#len);
    this.#len += 4;
  }
  f32(v: number): void {
    this.#ensure(4);
    this.#buf.writeFloatLE(v, this.#len);
    this.#len += 4;
  }
  u64(v: bigint | number): void {
    this.#ensure(8);
    this.#buf.writeBigUInt64LE(BigInt(v), this.#len);
    this.#len += 8;
  }
  u8(v: number): void {
    this.#ensure(1);
    this.#buf[this.#len++] = v;
  }
  str(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    this.u64(bytes.length);
    this.#ensure(bytes.length);
    bytes.copy(this.#buf, this.#len);
    this.#len += bytes.length;
  }
  pad(alignment: number): void {
    const rem = this.#len % alignment;
    if (rem === 0) return;
    this.#ensure(alignment - rem);
    this.#buf.fill(0, this.#len, this.#len + alignment - rem);
    this.#len += alignment - rem;
  }
  get length(): number {
    return this.#len;
  }
  bytes(): Buffer {
    return this.#buf.subarray(0, this.#len);
  }
}

function writeValue(sink: ByteSink, value: GgufMetaValue): void {
  sink.u32(value.type);
  switch (value.type) {
    case GgufValueType.UINT32:
      sink.u32(value.value);
      return;
    case GgufValueType.INT32:
      sink.i32(value.value);
      return;
    case GgufValueType.FLOAT32:
      sink.f32(value.value);
      return;
    case GgufValueType.UINT64:
      sink.u64(value.value);
      return;
    case GgufValueType.BOOL:
      sink.u8(value.value ? 1 : 0);
      return;
    case GgufValueType.STRING:
      sink.str(value.value);
      return;
    case GgufValueType.ARRAY: {
      sink.u32(value.itemType);
      sink.u64(value.value.length);
      if (value.itemType === GgufValueType.STRING) {
        for (const s of value.value as readonly string[]) sink.str(s);
      } else {
        const items = value.value as ArrayLike<number>;
        const put = value.itemType === GgufValueType.FLOAT32 ? sink.f32.bind(sink) : sink.i32.bind(sink);
        for (let i = 0; i < items.length; i++) put(items[i] as number);
      }
      return;
    }
  }
}

function elementCount(dims: readonly number[]): bigint {
  return dims.reduce((n, d) => n * BigInt(d), 1n);
}

/**
 * Writes a GGUF file (to a temp name, renamed into place when complete, so a crash never leaves a
 * half-written model under the final name).
 */
export async function writeGguf(
  path: string,
  metadata: ReadonlyArray<readonly [string, GgufMetaValue]>,
  tensors: readonly GgufTensorSpec[],
  alignment = GGUF_DEFAULT_ALIGNMENT,
): Promise<GgufWriteResult> {
  const header = new ByteSink();
  header.u32(GGUF_MAGIC);
  header.u32(GGUF_VERSION);
  header.u64(tensors.length);
  const kvs = alignment === GGUF_DEFAULT_ALIGNMENT ? metadata : [...metadata, ['general.alignment', meta.u32(alignment)] as const];
  header.u64(kvs.length);
  for (const [key, value] of kvs) {
    header.str(key);
    writeValue(header, value);
  }
  const sizes: bigint[] = [];
  let offset = 0n;
  const align = BigInt(alignment);
  for (const tensor of tensors) {
    const size = tensorByteSize(tensor.type, elementCount(tensor.dims));
    if (size === undefined) throw new Error(`writeGguf: unsupported tensor type ${tensor.type} for ${tensor.name}`);
    header.str(tensor.name);
    header.u32(tensor.dims.length);
    for (const d of tensor.dims) header.u64(d);
    header.u32(tensor.type);
    header.u64(offset);
    sizes.push(size);
    offset += ((size + align - 1n) / align) * align;
  }
  header.pad(alignment);

  const hash = createHash('sha256');
  const tmp = `${path}.partial-${process.pid}`;
  let fh: FileHandle | undefined;
  let written = 0;
  const put = async (bytes: Uint8Array) => {
    hash.update(bytes);
    await fh!.write(bytes);
    written += bytes.length;
  };
  try {
    fh = await open(tmp, 'w');
    await put(header.bytes());
    for (const [i, tensor] of tensors.entries()) {
      const data = await tensor.data();
      if (BigInt(data.length) !== sizes[i]) {
        throw new Error(`writeGguf: tensor ${tensor.name} produced ${data.length} bytes, expected ${sizes[i]}`);
      }
      await put(data);
      const rem = data.length % alignment;
      if (rem !== 0) await put(new Uint8Array(alignment - rem));
    }
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (error) {
    await fh?.close().catch(() => {});
    await rm(tmp, { force: true });
    throw error;
  }
  return { bytes: written, sha256: hash.digest('hex') };
}
