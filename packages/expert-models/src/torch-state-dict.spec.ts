import { describe, expect, it } from 'vitest';
import { decodeTorchStateDict } from './torch-state-dict';

/** A safetensors file from raw little-endian tensor bytes (as PyTorch's save_file writes them). */
function file(tensors: Record<string, { dtype: string; shape: number[]; bytes: number[] }>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let off = 0;
  const blobs: number[] = [];
  for (const [n, t] of Object.entries(tensors)) {
    header[n] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.bytes.length] };
    off += t.bytes.length;
    blobs.push(...t.bytes);
  }
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + blobs.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(blobs, 8 + h.length);
  return out;
}

const u16 = (...v: number[]) => v.flatMap((x) => [x & 0xff, x >> 8]);
const f64 = (...v: number[]) => Array.from(new Uint8Array(new Float64Array(v).buffer));

describe('decodeTorchStateDict', () => {
  it('widens F16, BF16 and F64 to float32 exactly; integer tensors have no data', () => {
    const { tensors, metadata } = decodeTorchStateDict({
      bytes: file(
        {
          // F16: 1, -2, 2^-24 (smallest subnormal), 65504 (largest), +inf, 0.333251953125 (0x3555)
          h: { dtype: 'F16', shape: [2, 3], bytes: u16(0x3c00, 0xc000, 0x0001, 0x7bff, 0x7c00, 0x3555) },
          // BF16: 1, -0.5 (the upper halves of the float32 bit patterns 0x3f800000, 0xbf000000)
          b: { dtype: 'BF16', shape: [2], bytes: u16(0x3f80, 0xbf00) },
          d: { dtype: 'F64', shape: [1], bytes: f64(0.1) },
          n: { dtype: 'I64', shape: [], bytes: [7, 0, 0, 0, 0, 0, 0, 0] },
        },
        { format: 'pt' },
      ),
    });
    expect(Array.from(tensors.h.data!)).toEqual([1, -2, 2 ** -24, 65504, Infinity, 0.333251953125]);
    expect(tensors.h.shape).toEqual([2, 3]);
    expect(Array.from(tensors.b.data!)).toEqual([1, -0.5]);
    expect(tensors.d.data![0]).toBe(Math.fround(0.1));
    expect(tensors.n).toEqual({ dtype: 'I64', shape: [], data: null });
    expect(metadata).toEqual({ format: 'pt' });
  });

  it('names what is wrong', () => {
    expect(() => decodeTorchStateDict({ bytes: file({ x: { dtype: 'C64', shape: [1], bytes: [0, 0, 0, 0, 0, 0, 0, 0] } }) })).toThrow(
      /tensor "x" has dtype "C64"; supported: F32, F16, BF16, F64, I64/,
    );
    expect(() => decodeTorchStateDict({ bytes: file({ x: { dtype: 'F32', shape: [2], bytes: [0, 0, 0, 0] } }), source: 'w.safetensors' })).toThrow(
      /w\.safetensors: tensor "x" has bad data_offsets \[0,4\] for F32 \[2\]/,
    );
    expect(() => decodeTorchStateDict({ bytes: new Uint8Array(4) })).toThrow(/4 bytes is too short/);
    expect(() => decodeTorchStateDict({ bytes: new Uint8Array(16).fill(255) })).toThrow(/header length .* exceeds the file/);
    expect(() => decodeTorchStateDict({ bytes: 'x' as never })).toThrow(/bytes must be a Uint8Array/);
  });
});
