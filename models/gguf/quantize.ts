/**
 * Block quantisation to ggml's Q8_0 and Q4_0 layouts (the reference quantize_row_*_ref in ggml-quants.c),
 * plus the inverse for tests. A block is 32 values sharing one f16 scale.
 *   Q8_0: f16 d, int8 q[32]          value = d * q
 *   Q4_0: f16 d, uint8 qs[16]        value = d * (nibble - 8); low nibbles hold x[0..15], high x[16..31]
 */

const QK = 32;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 -> IEEE half bits, round to nearest even (as ggml's GGML_FP32_TO_FP16 on CPUs without F16C). */
export function toHalf(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent, up to infinity (0x7c00), as IEEE rounding does.
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

export function fromHalf(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

function checkLength(n: number): void {
  if (n % QK !== 0) throw new Error(`quantize: row length ${n} is not a multiple of ${QK}`);
}

export function quantizeQ8_0(src: Float32Array): Uint8Array {
  checkLength(src.length);
  const blocks = src.length / QK;
  const out = new Uint8Array(blocks * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    const base = b * QK;
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(src[base + j]!));
    const d = amax / 127;
    const id = d ? 1 / d : 0;
    const o = b * 34;
    view.setUint16(o, toHalf(d), true);
    for (let j = 0; j < QK; j++) view.setInt8(o + 2 + j, Math.round(src[base + j]! * id));
  }
  return out;
}

export function quantizeQ4_0(src: Float32Array): Uint8Array {
  checkLength(src.length);
  const blocks = src.length / QK;
  const out = new Uint8Array(blocks * 18);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    const base = b * QK;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const v = src[base + j]!;
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = max / -8;
    const id = d ? 1 / d : 0;
    const o = b * 18;
    view.setUint16(o, toHalf(d), true);
    for (let j = 0; j < QK / 2; j++) {
      const x0 = Math.min(15, Math.trunc(src[base + j]! * id + 8.5));
      const x1 = Math.min(15, Math.trunc(src[base + j + QK / 2]! * id + 8.5));
      out[o + 2 + j] = x0 | (x1 << 4);
    }
  }
  return out;
}

export function dequantizeQ8_0(data: Uint8Array): Float32Array {
  const blocks = data.length / 34;
  const out = new Float32Array(blocks * QK);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let b = 0; b < blocks; b++) {
    const d = fromHalf(view.getUint16(b * 34, true));
    for (let j = 0; j < QK; j++) out[b * QK + j] = d * view.getInt8(b * 34 + 2 + j);
  }
  return out;
}

export function dequantizeQ4_0(data: Uint8Array): Float32Array {
  const blocks = data.length / 18;
  const out = new Float32Array(blocks * QK);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let b = 0; b < blocks; b++) {
    const d = fromHalf(view.getUint16(b * 18, true));
    for (let j = 0; j < QK / 2; j++) {
      const q = data[b * 18 + 2 + j]!;
      out[b * QK + j] = d * ((q & 0x0f) - 8);
      out[b * QK + j + QK / 2] = d * ((q >> 4) - 8);
    }
  }
  return out;
}
